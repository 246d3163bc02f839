#define BOOST_TEST_MODULE broadcast
// `\\*\mailslot\...` and `\\DOMAIN\mailslot\...` across machines: three real
// slotbusd in network namespaces on one bridge (multicast snooping off, a
// multicast route in each), made and removed here; nftables on the bridge
// duplicates and drops datagrams. Needs root and `ip netns` (CI runs as root).
#include "host_fixture.hpp"
#include "lan.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <map>
#include <sys/stat.h>
#include <thread>

using namespace slotbus::test;
namespace fs = std::filesystem;

namespace {

constexpr int port = 47077;

// Host h of the LAN in `domain`, broadcasting; the policy lets every domain's
// broadcasts write anything (a real one would name the domain and names).
std::unique_ptr<host> start(const lan& net, char h, const temp_dir& files,
                            const std::string& domain = "wg", std::vector<std::string> extra = {},
                            const std::string& group = "239.255.83.66:" + std::to_string(port))
{
    const auto policy = files.path / (std::string(1, h) + "-policy.json");
    write_file(policy, R"({"rules": [{"domain": "*", "allow": ["write"]}]})");
    std::vector<std::string> args{"--host-name",       name_of(h), "--domain", domain,
                                  "--broadcast",       group,      "--policy", policy.string(),
                                  "--beacon-interval", "300"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<host>(args, net.in(h));
}

boost::json::object broadcast_of(const host& h)
{
    const auto answer = cli(h, {"hosts", "--json"});
    BOOST_REQUIRE(answer.code == 0);
    return answer.json().at("broadcast").as_object();
}

long counter(const host& h, const char* name)
{
    return broadcast_of(h).at(name).to_number<long>();
}

// The entry host h keeps for host `other`, or an empty object.
boost::json::object heard(const host& h, const std::string& other)
{
    const auto b = broadcast_of(h);
    for (const auto& v : b.at("hosts").as_array())
        if (v.at("host").as_string() == other)
            return v.as_object();
    return {};
}

bool hears(const host& h, const std::string& other)
{
    return !heard(h, other).empty();
}

// The records_in of slot `path` on host h (0 if it has none).
long records_in(const host& h, const std::string& path)
{
    const auto stats = cli(h, {"stats", "--json"}).json();
    for (const auto& v : stats.at("slots").as_array())
        if (v.at("name").as_string() == R"(\\.\mailslot\)" + path)
            return v.at("records_in").to_number<long>();
    return 0;
}

// A reader of `name` on each of the hosts.
std::map<char, std::unique_ptr<child>> readers(const std::map<char, host*>& on,
                                               const std::string& name)
{
    std::map<char, std::unique_ptr<child>> out;
    for (const auto& [h, where] : on) {
        out[h] = peer(*where, {"create", name, "--senders"});
        BOOST_REQUIRE(out[h]->wait_for_line("created"));
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_broadcast_reaches_the_slot_on_every_host_of_the_domain_once)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    auto a = start(net, 'A', files), b = start(net, 'B', files), c = start(net, 'C', files);
    BOOST_REQUIRE(eventually([&] { return hears(*a, "beta") && hears(*a, "gamma"); }, 10s));
    auto r = readers({{'A', a.get()}, {'B', b.get()}, {'C', c.get()}}, R"(taxes\sue)");
    const long count = 50;
    auto writer = peer(*a, {"write", R"(\\*\mailslot\taxes\sue)", "--count", std::to_string(count),
                            "--prefix", "a"});
    // Each write's result: sent, and taken by the one local slot.
    BOOST_TEST(writer->wait_for_line("acked 50 failed 0 delivered 50", 20s));
    for (auto& [h, reader] : r) {
        BOOST_REQUIRE_MESSAGE(reader->wait_for_lines("record", count, 10s), "host " << h);
        const auto got = records_of(*reader);
        for (long i = 0; i < count; ++i)
            BOOST_TEST(got.at(static_cast<std::size_t>(i)) == "a-" + std::to_string(i));
        if (h != 'A') // stamped as the domain's, from the host its datagrams name
            BOOST_TEST(reader->stdout_text().find("host alpha client - domain wg") !=
                       std::string::npos);
    }
    std::this_thread::sleep_for(500ms); // a copy would have come by now
    for (const auto* h : {a.get(), b.get(), c.get()})
        BOOST_TEST(records_in(*h, R"(taxes\sue)") == count); // exactly once each
    BOOST_TEST(counter(*a, "sent") == count);
    BOOST_TEST(counter(*b, "received") == count);
    BOOST_TEST(counter(*b, "lost") == 0);

    // `slotbus hosts` lists what was heard, with domain and a claimed key.
    const auto table = cli(*a, {"hosts"});
    BOOST_TEST(table.out.find("broadcasts: domain wg on 239.255.83.66:47077") != std::string::npos,
               table.out);
    BOOST_TEST(table.out.find("gamma") != std::string::npos, table.out);
    BOOST_TEST(heard(*a, "gamma").at("address").as_string() == net.ip('C'));
    BOOST_TEST(heard(*a, "gamma").at("domain").as_string() == "wg");
}

BOOST_AUTO_TEST_CASE(duplicated_datagrams_still_arrive_once)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    auto a = start(net, 'A', files), b = start(net, 'B', files);
    BOOST_REQUIRE(eventually([&] { return hears(*b, "alpha"); }, 10s));
    auto r = readers({{'B', b.get()}}, "x");
    // Every datagram A sends reaches B twice: once through the bridge, once
    // copied straight to B's port.
    net.nft("table netdev sbdup {\n chain from_a {\n  type filter hook ingress device \"" +
            net.port('A') + "\" priority 0; policy accept;\n  udp dport " + std::to_string(port) +
            " @th,104,8 0 counter dup to \"" + net.port('B') + "\" comment \"dup\"\n }\n}\n");
    const long count = 100;
    auto writer = peer(*a, {"write", R"(\\WG\mailslot\x)", "--count", std::to_string(count)});
    BOOST_TEST(writer->wait_for_line("acked 100 failed 0", 20s));
    BOOST_REQUIRE(r['B']->wait_for_lines("record", count, 10s));
    std::this_thread::sleep_for(500ms);
    BOOST_TEST(net.counted("dup") == count); // the bridge really sent each twice
    BOOST_TEST(records_in(*b, "x") == count);
    BOOST_TEST(counter(*b, "duplicates") == count);
    BOOST_TEST(heard(*b, "alpha").at("duplicates").to_number<long>() == count);
}

BOOST_AUTO_TEST_CASE(under_loss_the_readers_gaps_match_what_was_dropped)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    auto a = start(net, 'A', files), c = start(net, 'C', files);
    BOOST_REQUIRE(eventually([&] { return hears(*c, "alpha"); }, 10s));
    auto r = readers({{'C', c.get()}}, "x");
    // A first record, so C knows where A's numbers for x begin.
    auto first = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", "1", "--prefix", "first"});
    BOOST_REQUIRE(r['C']->wait_for_lines("record", 1, 10s));
    // One record datagram in five to C is dropped on the bridge (beacons pass).
    net.nft("table bridge sbloss {\n chain to_c {\n  type filter hook forward priority 0; policy "
            "accept;\n  oifname \"" +
            net.port('C') + "\" udp dport " + std::to_string(port) +
            " @th,104,8 0 numgen random mod 100 < 20 counter drop comment \"lost\"\n }\n}\n");
    const long count = 300;
    auto writer = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", std::to_string(count)});
    BOOST_REQUIRE(writer->wait_for_line("acked 300 failed 0", 20s));
    // A's next beacon numbers its last record: C then knows all it lost.
    long dropped = 0;
    BOOST_REQUIRE(eventually(
        [&] {
            dropped = net.counted("lost");
            return dropped > 0 && counter(*c, "lost") == dropped;
        },
        10s));
    BOOST_TEST(dropped > count / 10); // about a fifth, surely more than a tenth
    BOOST_REQUIRE(
        r['C']->wait_for_lines("record", 1 + static_cast<std::size_t>(count - dropped), 10s));
    std::this_thread::sleep_for(300ms);
    // The reader got every record not dropped, in order, and was told of
    // every one dropped before its last.
    long received = 0, told = 0, last = -1;
    for (const auto& line : r['C']->lines()) {
        unsigned gap = 0;
        if (std::sscanf(line.c_str(), "gap %u", &gap) == 1)
            told += gap;
        if (line.rfind("record ", 0) == 0 && line.find("first") == std::string::npos) {
            const auto data = line.substr(line.find(' ', 7) + 1);
            const long index = std::stol(data.substr(data.find('-') + 1));
            BOOST_TEST(index > last);
            last = index;
            ++received;
        }
    }
    BOOST_TEST(received == count - dropped);
    BOOST_TEST(received + told == last + 1);          // every record up to the last: read or told
    BOOST_TEST(told == dropped - (count - 1 - last)); // only the last ones, after it, untold
    BOOST_TEST_MESSAGE("loss: " << dropped << " of " << count << " dropped, " << told
                                << " told to the reader");
}

BOOST_AUTO_TEST_CASE(a_domain_reaches_its_own_hosts_and_no_other)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    auto a = start(net, 'A', files, "wg"), b = start(net, 'B', files, "WG"),
         c = start(net, 'C', files, "other");
    BOOST_REQUIRE(eventually([&] { return hears(*a, "gamma") && hears(*c, "beta"); }, 10s));
    auto r = readers({{'A', a.get()}, {'B', b.get()}, {'C', c.get()}}, "x");
    auto star = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", "5", "--prefix", "star"});
    BOOST_TEST(star->wait_for_line("acked 5 failed 0 delivered 5", 10s));
    auto other = peer(*a, {"write", R"(\\OTHER\mailslot\x)", "--count", "3", "--prefix", "other"});
    // A has heard OTHER's host: a domain to send to, with no slot of A's in it.
    BOOST_TEST(other->wait_for_line("acked 3 failed 0 delivered 0", 10s));
    auto back = peer(*c, {"write", R"(\\wg\mailslot\x)", "--count", "4", "--prefix", "back"});
    BOOST_TEST(back->wait_for_line("acked 4 failed 0 delivered 0", 10s));
    BOOST_REQUIRE(r['A']->wait_for_lines("record", 9, 10s));
    BOOST_REQUIRE(r['B']->wait_for_lines("record", 9, 10s));
    BOOST_REQUIRE(r['C']->wait_for_lines("record", 3, 10s));
    std::this_thread::sleep_for(500ms);
    auto names = [](const child& reader) {
        std::map<std::string, int> n;
        for (const auto& rec : records_of(reader))
            ++n[rec.substr(0, rec.find('-'))];
        return n;
    };
    BOOST_TEST((names(*r['A']) == std::map<std::string, int>{{"star", 5}, {"back", 4}}));
    BOOST_TEST((names(*r['B']) == std::map<std::string, int>{{"star", 5}, {"back", 4}}));
    BOOST_TEST((names(*r['C']) == std::map<std::string, int>{{"other", 3}}));
    BOOST_TEST(counter(*c, "other_domain") == 5);
    BOOST_TEST(counter(*b, "other_domain") == 3);
    // A name that is no host and no domain heard of.
    auto nowhere = peer(*a, {"try", R"(send:\\nowhere\mailslot\x=x)"});
    BOOST_TEST(nowhere->wait_for_line("done", 10s));
    BOOST_TEST(nowhere->stdout_text().find("x=x 53") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_wrong_key_or_none_is_refused_and_counted)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    const auto key1 = files.path / "wg.key", key2 = files.path / "other.key";
    for (const auto& k : {key1, key2}) {
        child gen(SLOTBUS_CLI_PATH, {"keygen", "--domain-key", k.string()});
        BOOST_REQUIRE(gen.wait_exit() == 0);
    }
    // A key others may read is refused at start, with the reason.
    const auto loose = files.path / "loose.key";
    fs::copy_file(key1, loose);
    ::chmod(loose.c_str(), 0644);
    {
        child refused(SLOTBUSD_PATH, {"--socket", (files.path / "s").string(), "--broadcast",
                                      "--broadcast-key", loose.string()});
        BOOST_TEST(refused.wait_exit().value_or(-1) == 1);
        BOOST_TEST(refused.stderr_text().find("may be read by others") != std::string::npos,
                   refused.stderr_text());
    }
    auto a = start(net, 'A', files, "wg", {"--broadcast-key", key1.string()});
    auto b = start(net, 'B', files, "wg", {"--broadcast-key", key1.string()});
    auto c = start(net, 'C', files, "wg", {"--broadcast-key", key2.string()});
    BOOST_REQUIRE(eventually([&] { return hears(*b, "alpha"); }, 10s));
    auto r = readers({{'B', b.get()}, {'C', c.get()}}, "x");
    auto writer = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", "10"});
    BOOST_TEST(writer->wait_for_line("acked 10 failed 0", 10s));
    BOOST_REQUIRE(r['B']->wait_for_lines("record", 10, 10s));
    BOOST_TEST(eventually([&] { return counter(*c, "bad_signature") >= 10; }, 5s));
    BOOST_TEST(records_in(*c, "x") == 0);
    BOOST_TEST(!hears(*c, "alpha")); // its beacons are refused too
    // A host with no key at all: its datagrams are unsigned, and refused.
    c.reset();
    c = start(net, 'C', files, "wg");
    auto unsigned_writer = peer(*c, {"write", R"(\\*\mailslot\x)", "--count", "3"});
    BOOST_TEST(unsigned_writer->wait_for_line("acked 3 failed 0", 10s));
    BOOST_TEST(eventually([&] { return counter(*b, "unsigned") >= 3; }, 5s));
    BOOST_TEST(records_in(*b, "x") == 10);
    BOOST_TEST(b->log().find("unsigned datagram from " + net.ip('C')) != std::string::npos,
               b->log());
}

BOOST_AUTO_TEST_CASE(a_record_of_425_bytes_fails_with_53_and_nothing_is_sent)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    auto a = start(net, 'A', files), b = start(net, 'B', files);
    BOOST_REQUIRE(eventually([&] { return hears(*b, "alpha"); }, 10s));
    auto r = readers({{'B', b.get()}}, "x");
    auto big = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", "1", "--size", "425"});
    BOOST_TEST(big->wait_for_line("failed 0 53", 10s));
    auto fits = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", "1", "--size", "424"});
    BOOST_TEST(fits->wait_for_line("acked 1 failed 0", 10s));
    BOOST_REQUIRE(r['B']->wait_for_lines("record", 1, 10s));
    BOOST_TEST(records_of(*r['B']).front().size() == 424u);
    BOOST_TEST(counter(*a, "sent") == 1); // the 425-byte one never left
    BOOST_TEST(records_in(*b, "x") == 1);
}

BOOST_AUTO_TEST_CASE(seeds_serve_a_network_without_multicast)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    // No multicast reaches C or leaves it: only unicast to and from its seed.
    net.nft("table bridge sbnomc {\n chain f {\n  type filter hook forward priority 0; policy "
            "accept;\n  oifname \"" +
            net.port('C') + "\" ip daddr 224.0.0.0/4 drop\n  iifname \"" + net.port('C') +
            "\" ip daddr 224.0.0.0/4 drop\n }\n}\n");
    const auto seed = [&](char h) { return net.ip(h) + ":" + std::to_string(port); };
    auto a = start(net, 'A', files, "wg", {"--broadcast-seed", seed('C')});
    auto b = start(net, 'B', files);
    auto c = start(net, 'C', files, "wg", {"--broadcast-seed", seed('A')});
    BOOST_REQUIRE(eventually([&] { return hears(*a, "gamma") && hears(*c, "alpha"); }, 10s));
    BOOST_TEST(heard(*a, "gamma").at("by").as_string() == "unicast");
    BOOST_TEST(!hears(*c, "beta")); // B knows no seed: C never hears of it
    auto r = readers({{'B', b.get()}, {'C', c.get()}}, "x");
    auto writer = peer(*a, {"write", R"(\\*\mailslot\x)", "--count", "20"});
    BOOST_TEST(writer->wait_for_line("acked 20 failed 0", 10s));
    BOOST_TEST(r['B']->wait_for_lines("record", 20, 10s)); // by multicast
    BOOST_TEST(r['C']->wait_for_lines("record", 20, 10s)); // by unicast to a seed's host
}

BOOST_AUTO_TEST_CASE(a_beacon_finds_a_peers_link_and_the_link_verifies_its_key)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    // Each host pins the other's key but gives no address: a beacon says where.
    auto host_with_link = [&](char h, char other) {
        const auto peers = files.path / (std::string(1, h) + "-peers.json");
        write_file(peers, R"({"peers": [{"host": ")" + name_of(other) + R"(", "fingerprint": ")" +
                              k.fingerprint[other] + R"("}]})");
        return start(net, h, files, "wg",
                     {"--peers", peers.string(), "--host-key", k.key_dir(h), "--link-listen",
                      net.ip(h) + ":47078", "--link-backoff", "100"});
    };
    auto a = host_with_link('A', 'B'), b = host_with_link('B', 'A');
    BOOST_REQUIRE(eventually(
        [&] {
            const auto answer = cli(*a, {"hosts", "--json"}).json();
            const auto& p = answer.at("peers").as_array().at(0);
            return p.at("state").as_string() == "up";
        },
        15s));
    const auto table = cli(*a, {"hosts"}).out;
    BOOST_TEST(table.find("verified by its link") != std::string::npos, table);
    BOOST_TEST(heard(*a, "beta").at("claimed_fingerprint").as_string() == k.fingerprint['B']);
}

BOOST_AUTO_TEST_CASE(an_ipv6_link_scope_group_works_the_same)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    // Link-local addresses are usable once duplicate detection is done.
    BOOST_REQUIRE(eventually(
        [&] {
            for (char h : {'A', 'B', 'C'})
                if (sh("ip -n " + net.ns(h) + " -6 addr show dev " + net.veth(h) +
                       " scope link | grep -q inet6") != 0 ||
                    sh("ip -n " + net.ns(h) + " -6 addr show dev " + net.veth(h) +
                       " tentative | grep -q inet6") == 0)
                    return false;
            return true;
        },
        10s));
    auto v6 = [&](char h) {
        return start(net, h, files, "wg", {"--broadcast-interface", net.veth(h)},
                     "[ff12::5342]:47077");
    };
    auto a = v6('A'), b = v6('B'), c = v6('C');
    BOOST_REQUIRE(eventually([&] { return hears(*a, "beta") && hears(*a, "gamma"); }, 10s));
    auto r = readers({{'B', b.get()}, {'C', c.get()}}, R"(taxes\sue)");
    auto writer = peer(*a, {"write", R"(\\*\mailslot\taxes\sue)", "--count", "20"});
    BOOST_TEST(writer->wait_for_line("acked 20 failed 0 delivered 0", 10s));
    BOOST_TEST(r['B']->wait_for_lines("record", 20, 10s));
    BOOST_TEST(r['C']->wait_for_lines("record", 20, 10s));
    BOOST_TEST(heard(*b, "alpha").at("address").as_string().starts_with("fe80::"));
}

BOOST_AUTO_TEST_CASE(the_articles_taxes_sue_example_on_three_hosts)
{
    lan net;
    NEED_LAN(net);
    temp_dir files;
    auto a = start(net, 'A', files, "WorkGroup"), b = start(net, 'B', files, "WorkGroup"),
         c = start(net, 'C', files, "WorkGroup");
    BOOST_REQUIRE(eventually([&] { return hears(*a, "beta") && hears(*a, "gamma"); }, 10s));
    std::vector<std::unique_ptr<child>> sues;
    for (const auto* h : {a.get(), b.get(), c.get()}) {
        sues.push_back(std::make_unique<child>(BROADCAST_SUE_PATH,
                                               std::vector<std::string>{"--count", "2"},
                                               std::vector<std::string>{h->env()}));
        BOOST_REQUIRE(sues.back()->wait_for_line("created"));
    }
    child star(BROADCAST_TAXES_PATH, {"*"}, {a->env()});
    BOOST_TEST((star.wait_exit(10s) == 0));
    BOOST_TEST(star.stdout_text().find(
                   R"(Sent 16 bytes to \\*\mailslot\taxes\sue (1 slot on this computer).)") !=
                   std::string::npos,
               star.stdout_text());
    child by_name(BROADCAST_TAXES_PATH, {"WorkGroup", "Pete filed too"}, {b->env()});
    BOOST_TEST((by_name.wait_exit(10s) == 0));
    for (std::size_t i = 0; i < sues.size(); ++i) {
        BOOST_TEST((sues[i]->wait_exit(10s) == 0));
        const auto said = sues[i]->stdout_text();
        BOOST_TEST(said.find("Sue got 16 bytes: Sue's 1040 is in") != std::string::npos, said);
        BOOST_TEST(said.find("Sue got 14 bytes: Pete filed too") != std::string::npos, said);
    }
    BOOST_TEST(sues[1]->stdout_text().find("(from host alpha, a broadcast to workgroup)") !=
               std::string::npos);
    child nowhere(BROADCAST_TAXES_PATH, {"Elsewhere"}, {a->env()});
    BOOST_TEST((nowhere.wait_exit(10s) == 1));
    BOOST_TEST(nowhere.stdout_text().find("CreateFile failed: 53") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(names_other_hosts_would_refuse_are_refused_at_start)
{
    temp_dir files;
    // Every datagram carries both names: a dotted one (a hostname's FQDN)
    // would be dropped as malformed by every other host.
    for (const auto& [option, name] :
         {std::pair{"--host-name", "build7.example.org"}, std::pair{"--domain", "work group"}}) {
        child refused(SLOTBUSD_PATH,
                      {"--socket", (files.path / "s").string(), "--broadcast", option, name});
        BOOST_TEST(refused.wait_exit().value_or(-1) == 2);
        BOOST_TEST(refused.stderr_text().find(std::string(option) + " " + name) !=
                       std::string::npos,
                   refused.stderr_text());
    }
}
