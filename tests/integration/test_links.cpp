#define BOOST_TEST_MODULE links
// `\\HOST\mailslot\...` across machines: three real slotbusd in network
// namespaces joined by a bridge (198.18.0.0/24), linked over TLS with pinned
// keys; made and removed here. Needs root and `ip netns` (CI runs as root).
#include "host_fixture.hpp"
#include "lan.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace slotbus::test;
namespace fs = std::filesystem;

namespace {

// One host of the LAN: its peers file names `peers`, pinned to `pins` (a
// wrong pin is how a test makes a key mismatch).
std::unique_ptr<host> start(const lan& net, const keys& k, char h,
                            const std::map<char, std::string>& peers, const temp_dir& files,
                            std::vector<std::string> extra = {})
{
    std::string list;
    for (const auto& [peer, pin] : peers)
        list += std::string(list.empty() ? "" : ",") + R"({"host": ")" + name_of(peer) +
                R"(", "address": ")" + net.ip(peer) + R"(:47078", "fingerprint": ")" + pin +
                R"("})";
    const auto peers_file = files.path / (std::string(1, h) + "-peers.json");
    write_file(peers_file, R"({"peers": [)" + list + "]}");
    const auto policy_file = files.path / (std::string(1, h) + "-policy.json");
    write_file(
        policy_file,
        R"({"rules": [{"host": "*", "allow": ["write"], "names": ["events\\**", "blort"]}]})");
    std::vector<std::string> args{"--host-name",      name_of(h),
                                  "--peers",          peers_file.string(),
                                  "--host-key",       k.key_dir(h),
                                  "--link-listen",    net.ip(h) + ":47078",
                                  "--policy",         policy_file.string(),
                                  "--link-heartbeat", "300",
                                  "--link-backoff",   "100"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<host>(args, net.in(h));
}

boost::json::object link_to(const host& h, const std::string& peer)
{
    const auto answer = cli(h, {"hosts", "--json"});
    if (answer.code != 0)
        return {};
    const auto doc = answer.json();
    for (const auto& p : doc.at("peers").as_array())
        if (p.at("host").as_string() == peer)
            return p.as_object();
    return {};
}

bool link_up(const host& h, const std::string& peer)
{
    const auto p = link_to(h, peer);
    return !p.empty() && p.at("state").as_string() == "up";
}

} // namespace

BOOST_AUTO_TEST_CASE(writes_from_two_hosts_reach_a_third_in_order_with_their_results)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    auto b = start(net, k, 'B', {{'A', k.fingerprint['A']}, {'C', k.fingerprint['C']}}, files);
    auto a = start(net, k, 'A', {{'B', k.fingerprint['B']}}, files);
    auto c = start(net, k, 'C', {{'B', k.fingerprint['B']}}, files);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta") && link_up(*c, "beta"); }, 15s));
    BOOST_TEST(link_to(*b, "alpha").at("fingerprint").as_string() == k.fingerprint['A']);

    auto reader = peer(*b, {"create", "events\\orders", "--count", "2000"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto from_a = peer(
        *a, {"write", "\\\\beta\\mailslot\\events\\orders", "--count", "1000", "--prefix", "a"});
    auto from_c = peer(
        *c, {"write", "\\\\BETA\\mailslot\\events\\orders", "--count", "1000", "--prefix", "c"});
    BOOST_TEST(from_a->wait_for_line("acked 1000 failed 0 delivered 1000", 30s));
    BOOST_TEST(from_c->wait_for_line("acked 1000 failed 0 delivered 1000", 30s));
    BOOST_REQUIRE(reader->wait_exit(20s) == 0);
    std::map<char, long> next{{'a', 0}, {'c', 0}};
    for (const auto& r : records_of(*reader)) { // each writer's order kept
        const char who = r.at(0);
        BOOST_TEST(r == std::string(1, who) + "-" + std::to_string(next[who]));
        ++next[who];
    }
    BOOST_TEST(next['a'] == 1000);
    BOOST_TEST(next['c'] == 1000);

    // Per record, and the link stays: a name BETA does not allow, none of that name.
    auto refused = peer(*a, {"try", "send:\\\\beta\\mailslot\\secret=x",
                             "send:\\\\beta\\mailslot\\events\\nobody=x",
                             "send:\\\\zeta\\mailslot\\events\\x=x"});
    BOOST_TEST(refused->wait_for_line("done", 10s));
    const auto said = refused->stdout_text();
    BOOST_TEST(said.find("beta\\mailslot\\secret=x 65") != std::string::npos, said);
    BOOST_TEST(said.find("events\\nobody=x 2") != std::string::npos, said);
    BOOST_TEST(said.find("zeta\\mailslot\\events\\x=x 53") != std::string::npos, said);
    BOOST_TEST(link_up(*a, "beta"));
}

BOOST_AUTO_TEST_CASE(a_wrong_or_unknown_key_gets_no_link)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    auto b = start(net, k, 'B', {{'A', k.fingerprint['A']}}, files);
    // C pins another key for BETA (one it dials with): BETA's real key is
    // refused by C, and C's, which BETA does not know, by BETA.
    auto c = start(net, k, 'C', {{'B', k.key_above('C')}}, files);
    auto a = start(net, k, 'A', {{'B', k.fingerprint['B']}}, files);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta"); }, 15s));
    BOOST_TEST(eventually(
        [&] {
            const auto p = link_to(*c, "beta");
            return !p.empty() && p.at("state").as_string() != "up" && p.contains("last_error") &&
                   !p.at("last_error").as_string().empty();
        },
        10s));
    BOOST_TEST(!link_up(*c, "beta"));
    auto attempt = peer(*c, {"try", "send:\\\\beta\\mailslot\\events\\x=x"});
    BOOST_TEST(attempt->wait_for_line("done", 10s));
    BOOST_TEST(attempt->stdout_text().find("events\\x=x 53") != std::string::npos);
    BOOST_TEST(b->log().find("refused") != std::string::npos, b->log());
}

BOOST_AUTO_TEST_CASE(a_cut_cable_loses_nothing_silently_and_doubles_nothing)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    auto b = start(net, k, 'B', {{'A', k.fingerprint['A']}}, files);
    auto a = start(net, k, 'A', {{'B', k.fingerprint['B']}}, files);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta"); }, 15s));
    const long count = 3000;
    auto reader = peer(*b, {"create", "events\\cut"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto writer = peer(*a, {"write", "\\\\beta\\mailslot\\events\\cut", "--count",
                            std::to_string(count), "--prefix", "w", "--pace", "1000"});
    BOOST_REQUIRE(reader->wait_for_lines("record", 300, 20s)); // mid-stream
    net.cable('A', false);
    BOOST_REQUIRE(eventually([&] { return !link_up(*a, "beta"); }, 10s));
    std::this_thread::sleep_for(500ms); // writes meanwhile fail: the link is down
    net.cable('A', true);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta"); }, 15s));
    BOOST_REQUIRE(writer->wait_for_line("acked", 60s));
    // Every write succeeded, or failed out loud (53: sent while the link
    // was down; 64: its outcome is unknown); what succeeded arrived once.
    std::set<long> failed;
    for (const auto& line : writer->lines())
        if (line.rfind("failed ", 0) == 0) {
            long index = 0;
            int error = 0;
            BOOST_REQUIRE(std::sscanf(line.c_str(), "failed %ld %d", &index, &error) == 2);
            BOOST_TEST((error == 53 || error == 64), line);
            failed.insert(index);
        }
    const long succeeded = count - static_cast<long>(failed.size());
    BOOST_TEST(!failed.empty()); // the cut really happened mid-stream
    BOOST_REQUIRE(reader->wait_for_lines("record", static_cast<std::size_t>(succeeded), 20s));
    std::this_thread::sleep_for(300ms); // anything doubled would arrive now
    const auto got = records_of(*reader);
    BOOST_TEST(static_cast<long>(got.size()) == succeeded);
    long last = -1;
    for (const auto& r : got) {
        const long index = std::stol(r.substr(2));
        BOOST_TEST(index > last, "in order, once: " << r);
        BOOST_TEST(!failed.count(index), r << " failed and arrived");
        last = index;
    }
    const auto link = link_to(*a, "beta");
    BOOST_TEST(link.at("streams").to_number<long>() >= 2);
    BOOST_TEST_MESSAGE("cut: " << succeeded << " delivered, " << failed.size()
                               << " failed; resumed " << link.at("resumed"));
}

BOOST_AUTO_TEST_CASE(a_full_remote_slot_holds_back_only_its_own_writers)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    // A full slot holds its writers as long as it takes (not marked slow).
    auto b = start(net, k, 'B', {{'A', k.fingerprint['A']}}, files,
                   {"--slow-after", "600000", "--max-record-size", "65536"});
    auto a = start(net, k, 'A', {{'B', k.fingerprint['B']}}, files);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta"); }, 15s));
    // A reader that stops reading: its slot fills, then BETA holds the
    // flow's frames, then ALPHA holds the flow's writer.
    auto stuck_reader = peer(*b, {"create", "events\\full", "--budget", "16384"});
    BOOST_REQUIRE(stuck_reader->wait_for_line("created"));
    stuck_reader->signal(SIGSTOP);
    auto reader = peer(*b, {"create", "events\\free", "--count", "500"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto stuck =
        peer(*a, {"write", "\\\\beta\\mailslot\\events\\full", "--count", "600", "--size", "1000"});
    BOOST_REQUIRE(eventually(
        [&] {
            const auto link = link_to(*a, "beta");
            for (const auto& d : link.at("destinations").as_array())
                if (d.at("path").as_string() == "events\\full" &&
                    d.at("waiting").to_number<long>() > 0)
                    return true;
            return false;
        },
        10s)); // held back at ALPHA, by the destination's credit
    auto flowing = peer(*a, {"write", "\\\\beta\\mailslot\\events\\free", "--count", "500"});
    BOOST_TEST(flowing->wait_for_line("acked 500 failed 0 delivered 500", 20s));
    BOOST_TEST((reader->wait_exit(10s) == 0));
    BOOST_TEST(!stuck->exited()); // still held, nothing dropped
    stuck_reader->signal(SIGCONT);
    BOOST_TEST(stuck_reader->wait_for_lines("record", 600, 30s)); // (its output is read meanwhile)
    BOOST_TEST(stuck->wait_for_line("acked 600 failed 0 delivered 600", 10s));
}

BOOST_AUTO_TEST_CASE(the_network_articles_server_and_client_on_two_hosts)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    auto b = start(net, k, 'B', {{'A', k.fingerprint['A']}}, files);
    auto a = start(net, k, 'A', {{'B', k.fingerprint['B']}}, files);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta"); }, 15s));
    child server(NETWORK_SERVER_PATH, {"--count", "2"}, {b->env()});
    BOOST_REQUIRE(server.wait_for_line("created"));
    child client(NETWORK_CLIENT_PATH, {"beta", "--count", "2"}, {a->env()});
    const auto client_exit = client.wait_exit(10s);
    BOOST_TEST((client_exit == 0), "exit " << client_exit.value_or(-999) << ": "
                                           << client.stdout_text() << client.stderr_text());
    BOOST_TEST(client.wait_for_lines("delivered to 1 slot there", 2, 1s));
    BOOST_TEST((server.wait_exit(10s) == 0));
    BOOST_TEST(server.wait_for_lines("Next record is 17 bytes: This is some text", 2, 1s));
    BOOST_TEST(server.wait_for_lines("(from host alpha)", 2, 1s)); // the link's word
    // A host that is no peer: the open fails, as CreateFile does.
    child stranger(NETWORK_CLIENT_PATH, {"zeta"}, {a->env()});
    BOOST_TEST((stranger.wait_exit(10s) == 1));
    BOOST_TEST(stranger.stdout_text().find("CreateFile failed: 53") != std::string::npos);
}

// The Windows API across two hosts: the network article's server and client
// built from its fragments (tests/win32), the client writing to
// `\\beta\mailslot\blort` as the article's does to `\\MyComputer\...`.
BOOST_AUTO_TEST_CASE(the_win32_network_programs_on_two_hosts)
{
    lan net;
    NEED_LAN(net);
    keys k;
    temp_dir files;
    auto b = start(net, k, 'B', {{'A', k.fingerprint['A']}}, files);
    auto a = start(net, k, 'A', {{'B', k.fingerprint['B']}}, files);
    BOOST_REQUIRE(eventually([&] { return link_up(*a, "beta"); }, 15s));
    child server(WIN32_NETWORK_SERVER_PATH, {"1", R"(\\.\mailslot\blort)"}, {b->env()});
    BOOST_REQUIRE(server.wait_for_line("Mailslot created successfully."));
    child client(WIN32_NETWORK_CLIENT_PATH, {R"(\\beta\mailslot\blort)"}, {a->env()});
    BOOST_TEST((client.wait_exit(10s) == 0), client.stdout_text());
    BOOST_TEST(client.stdout_text() == "Wrote 8 bytes.\n");
    BOOST_TEST((server.wait_exit(10s) == 0));
    BOOST_TEST(server.stdout_text() ==
               "Mailslot created successfully.\nNext record is 8 bytes.\nRecord: This is \n");
    // A host that is no peer: CreateFile fails with 53, as on Windows.
    child stranger(WIN32_NETWORK_CLIENT_PATH, {R"(\\zeta\mailslot\blort)"}, {a->env()});
    BOOST_TEST((stranger.wait_exit(10s) == 1));
    BOOST_TEST(stranger.stdout_text() == "CreateFile failed: 53\n");
}
