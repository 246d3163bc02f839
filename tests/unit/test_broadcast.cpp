#define BOOST_TEST_MODULE broadcast
// Domain broadcasts without sockets: the datagram codec and its key, what a
// receiving host makes of datagrams (duplicates, late ones, losses told per
// name, restarts, leases), the sending rate, and the core's side (broadcast
// writers, records that come in for a domain's session).
#include "core_client.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "core/core.hpp"
#include "host/broadcast.hpp"
#include "transport/udp/datagram.hpp"

using namespace slotbus;
using namespace slotbus::bus;
using namespace slotbus::test;
using namespace std::chrono_literals;

namespace {

byte_span bytes_of(std::string_view s)
{
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string text_of(byte_span b)
{
    return {b.begin(), b.end()};
}

domain_key key_of(std::string_view hex)
{
    std::string why;
    auto k = domain_key::parse(hex, why);
    BOOST_REQUIRE_MESSAGE(k, why);
    return *k;
}

const std::string key_a = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const std::string key_b = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

broadcast_settings host_settings(std::string name, std::string domain = "wg",
                                 std::uint64_t epoch = 1000)
{
    broadcast_settings s;
    s.host = std::move(name);
    s.domain = std::move(domain);
    s.epoch = epoch;
    s.interval = 1000ms;
    return s;
}

using clock = domain_broadcast::clock;
const domain_broadcast::endpoint somewhere(boost::asio::ip::make_address("198.18.0.1"), 47077);

// What B makes of A's record to `path` (its `key` case-folded).
domain_broadcast::taken pass(domain_broadcast& from, domain_broadcast& to, std::string_view path,
                             std::string_view data, clock::time_point now = clock::now())
{
    // What `taken` views (path, payload) stays valid until the next pass.
    static byte_buffer last;
    last = from.record("wg", path, fold_case(path), bytes_of(data));
    return to.take(last, somewhere, false, now);
}

using what = domain_broadcast::taken::what;

} // namespace

// ---- the datagram -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_record_and_a_beacon_come_back_as_they_went)
{
    datagram d;
    d.kind = datagram_kind::record;
    d.epoch = 77;
    d.seq = 5;
    d.name_seq = 3;
    d.host = "alpha";
    d.domain = "wg";
    d.path = R"(taxes\sue)";
    const std::string payload(424, 'p'); // the most a broadcast carries
    d.payload = bytes_of(payload);
    for (const bool signed_ : {false, true}) {
        const auto key = key_of(key_a);
        const auto bytes = encode(d, signed_ ? &key : nullptr);
        BOOST_TEST(bytes.size() < 1232u); // an IPv6 link carries it unfragmented
        datagram out;
        BOOST_REQUIRE(decode(bytes, out, signed_ ? &key : nullptr) == decode_result::ok);
        BOOST_TEST(out.epoch == 77u);
        BOOST_TEST(out.seq == 5u);
        BOOST_TEST(out.name_seq == 3u);
        BOOST_TEST(out.host == "alpha");
        BOOST_TEST(out.domain == "wg");
        BOOST_TEST(out.path == R"(taxes\sue)");
        BOOST_TEST(text_of(out.payload) == payload);
        BOOST_TEST(out.signed_by_key == signed_);
    }
    datagram hello;
    hello.kind = datagram_kind::hello;
    hello.host = "beta";
    hello.domain = "wg";
    hello.link_port = 47078;
    hello.lease_ms = 15000;
    hello.fingerprint = "sha256:abc";
    const auto bytes = encode(hello, nullptr); // what decode views must outlive it
    datagram out;
    BOOST_REQUIRE(decode(bytes, out, nullptr) == decode_result::ok);
    BOOST_TEST(out.link_port == 47078u);
    BOOST_TEST(out.lease_ms == 15000u);
    BOOST_TEST(out.fingerprint == "sha256:abc");
}

BOOST_AUTO_TEST_CASE(a_key_refuses_unsigned_wrongly_signed_and_changed_datagrams)
{
    const auto a = key_of(key_a), b = key_of(key_b);
    datagram d;
    d.host = "alpha";
    d.domain = "wg";
    d.seq = 1;
    d.path = "x";
    d.payload = bytes_of("pay me");
    datagram out;
    BOOST_TEST((decode(encode(d, nullptr), out, &a) == decode_result::unsigned_));
    BOOST_TEST((decode(encode(d, &b), out, &a) == decode_result::bad_signature));
    auto changed = encode(d, &a);
    changed[changed.size() - 20] ^= 1; // a byte of the payload
    BOOST_TEST((decode(changed, out, &a) == decode_result::bad_signature));
    // A host without a key takes signed datagrams, checking nothing.
    BOOST_TEST((decode(encode(d, &a), out, nullptr) == decode_result::ok));
}

BOOST_AUTO_TEST_CASE(lying_lengths_and_strange_bytes_are_malformed)
{
    datagram d;
    d.host = "alpha";
    d.domain = "wg";
    d.seq = 1;
    d.path = "x";
    d.payload = bytes_of("abc");
    const auto good = encode(d, nullptr);
    datagram out;
    for (std::size_t cut = 0; cut < good.size(); ++cut) // every truncation
        BOOST_TEST((decode(byte_span(good).first(cut), out, nullptr) == decode_result::malformed));
    auto longer = good;
    longer.push_back(0);
    BOOST_TEST((decode(longer, out, nullptr) == decode_result::malformed));
    auto lying = good;
    lying[good.size() - 5] = 0xff; // the payload's length, low byte: more than there is
    BOOST_TEST((decode(lying, out, nullptr) == decode_result::malformed));
    const std::string too_much(425, 'b'); // one byte over what a broadcast carries
    auto big = d;
    big.payload = bytes_of(too_much);
    BOOST_TEST((decode(encode(big, nullptr), out, nullptr) == decode_result::malformed));
    big.payload = big.payload.first(424);
    const auto most = encode(big, nullptr);
    BOOST_TEST((decode(most, out, nullptr) == decode_result::ok));
    auto version = good;
    version[4] = 9;
    BOOST_TEST((decode(version, out, nullptr) == decode_result::malformed));
    auto kind = good;
    kind[5] = 4;
    BOOST_TEST((decode(kind, out, nullptr) == decode_result::malformed));
    BOOST_TEST((decode(bytes_of("SBDG"), out, nullptr) == decode_result::malformed));
}

BOOST_AUTO_TEST_CASE(a_domain_key_is_16_to_64_bytes_of_hex)
{
    std::string why;
    BOOST_TEST(domain_key::parse(key_a + "\n", why).has_value()); // a file's newline
    BOOST_TEST(!domain_key::parse("abcd", why).has_value());
    BOOST_TEST(why.find("32 to 128 hex digits") != std::string::npos);
    BOOST_TEST(!domain_key::parse(std::string(32, 'g'), why).has_value());
    BOOST_TEST(!domain_key::parse(std::string(33, 'a'), why).has_value());
    BOOST_TEST(!domain_key::parse(std::string(130, 'a'), why).has_value());
}

// ---- what a receiving host makes of them ---------------------------------------------------

BOOST_AUTO_TEST_CASE(each_record_once_in_order_and_losses_told_to_their_name)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    auto t = pass(a, b, "x", "1");
    BOOST_TEST((t.kind == what::record));
    BOOST_TEST(t.from->name == "alpha");
    BOOST_TEST(t.path == "x");
    BOOST_TEST(text_of(t.payload) == "1");
    BOOST_TEST(t.missed == 0u);

    // A copy of a record already taken: dropped, counted.
    const auto two = a.record("wg", "x", "x", bytes_of("2"));
    BOOST_TEST((b.take(two, somewhere, false, clock::now()).kind == what::record));
    BOOST_TEST((b.take(two, somewhere, false, clock::now()).kind == what::nothing));
    BOOST_TEST(b.counters().duplicates == 1u);

    // x's third is lost, and so is a record to y: x's fourth says one of
    // its own is missing, y's next says one of y's.
    (void)a.record("wg", "x", "x", bytes_of("3"));
    (void)a.record("wg", "y", "y", bytes_of("y1"));
    t = pass(a, b, "x", "4");
    BOOST_TEST(t.missed == 1u);
    BOOST_TEST(b.counters().lost == 2u);
    t = pass(a, b, "y", "y2");
    BOOST_TEST((t.kind == what::record));
    BOOST_TEST(t.missed == 0u); // y's first here: what came before is not known
    (void)a.record("wg", "y", "y", bytes_of("y3"));
    t = pass(a, b, "Y", "y4"); // the same name, spelled otherwise
    BOOST_TEST(t.missed == 1u);

    // A record older than one taken comes late: dropped, so order holds.
    const auto early = a.record("wg", "x", "x", bytes_of("5"));
    BOOST_TEST((pass(a, b, "x", "6").kind == what::record));
    BOOST_TEST((b.take(early, somewhere, false, clock::now()).kind == what::nothing));
    BOOST_TEST(b.counters().late == 1u);
    BOOST_TEST((b.take(early, somewhere, false, clock::now()).kind == what::nothing));
    BOOST_TEST(b.counters().duplicates == 2u); // a second copy of it is a duplicate
    BOOST_TEST(b.counters().received == 6u);
}

BOOST_AUTO_TEST_CASE(a_beacon_tells_of_the_last_records_lost)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    BOOST_TEST((pass(a, b, "x", "1").kind == what::record));
    (void)a.record("wg", "x", "x", bytes_of("2"));
    (void)a.record("wg", "x", "x", bytes_of("3"));
    BOOST_TEST((b.take(a.hello(), somewhere, false, clock::now()).kind == what::hello));
    BOOST_TEST(b.counters().lost == 2u);
    BOOST_TEST(b.find("alpha")->lost == 2u);
    BOOST_TEST(pass(a, b, "x", "4").missed == 2u); // x's reader learns it with x's next
    BOOST_TEST(b.counters().lost == 2u);           // counted once
}

BOOST_AUTO_TEST_CASE(a_restart_starts_again_and_an_earlier_boot_is_stale)
{
    domain_broadcast a(host_settings("alpha", "wg", 1000)), b(host_settings("beta"));
    for (int i = 0; i < 5; ++i)
        (void)pass(a, b, "x", "before");
    domain_broadcast again(host_settings("alpha", "wg", 2000)); // booted later
    auto t = pass(again, b, "x", "after");
    BOOST_TEST((t.kind == what::record));
    BOOST_TEST(t.restarted);
    BOOST_TEST(t.missed == 0u);
    BOOST_TEST(b.counters().lost == 0u);
    // Datagrams of the earlier boot (a replay) are refused while it lives.
    BOOST_TEST((pass(a, b, "x", "replayed").kind == what::nothing));
    BOOST_TEST(b.counters().stale == 1u);
}

BOOST_AUTO_TEST_CASE(its_own_come_back_silently_and_an_impostor_is_counted)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    const auto own = a.record("wg", "x", "x", bytes_of("mine"));
    BOOST_TEST((a.take(own, somewhere, false, clock::now()).kind == what::nothing));
    BOOST_TEST(a.counters().own_name == 0u);
    domain_broadcast impostor(host_settings("ALPHA", "wg", 5));
    BOOST_TEST((pass(impostor, a, "x", "i am alpha").kind == what::nothing));
    BOOST_TEST(a.counters().own_name == 1u);
}

BOOST_AUTO_TEST_CASE(another_domains_records_are_not_taken_but_its_hosts_are_known)
{
    domain_broadcast a(host_settings("alpha", "wg")), c(host_settings("gamma", "other"));
    BOOST_TEST(!a.knows_domain("other"));
    BOOST_TEST((a.take(c.hello(), somewhere, false, clock::now()).kind == what::hello));
    BOOST_TEST(a.knows_domain("other"));
    BOOST_TEST(a.knows_domain("wg")); // its own, always
    BOOST_TEST(a.find("gamma")->domain == "other");
    const auto d = c.record("other", "x", "x", bytes_of("for others"));
    BOOST_TEST((a.take(d, somewhere, false, clock::now()).kind == what::nothing));
    BOOST_TEST(a.counters().other_domain == 1u);
    // A record this host sends to the other domain: its receivers take it.
    BOOST_TEST(
        (c.take(a.record("other", "x", "x", bytes_of("hi")), somewhere, false, clock::now()).kind ==
         what::record));
}

BOOST_AUTO_TEST_CASE(hosts_are_forgotten_when_they_say_bye_or_their_lease_runs_out)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta")), c(host_settings("gamma"));
    a.add_seed(somewhere.address());
    const auto now = clock::now();
    BOOST_TEST((a.take(b.hello(), somewhere, false, now).kind == what::hello));
    BOOST_TEST((a.take(c.hello(), somewhere, true, now).kind == what::hello));
    BOOST_TEST(a.hosts(now).size() == 2u);
    // c's beacons came by unicast only: it is sent records so too.
    BOOST_REQUIRE(a.unicast_members(now).size() == 1u);
    auto t = a.take(c.bye(), somewhere, true, now);
    BOOST_TEST((t.kind == what::gone));
    BOOST_TEST(t.host_key == "gamma");
    BOOST_TEST(!a.find("gamma"));
    BOOST_TEST(a.expire(now + 2999ms).empty()); // the lease: three intervals
    const auto gone = a.expire(now + 3001ms);
    BOOST_REQUIRE(gone.size() == 1u);
    BOOST_TEST(gone.front() == "beta");
    BOOST_TEST(a.hosts(now).empty());
}

BOOST_AUTO_TEST_CASE(a_query_asks_for_a_beacon)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    BOOST_TEST((a.take(b.query(), somewhere, false, clock::now()).kind == what::query));
}

BOOST_AUTO_TEST_CASE(strangers_are_bounded)
{
    auto settings = host_settings("alpha");
    settings.max_hosts = 3;
    domain_broadcast a(settings);
    for (int i = 0; i < 5; ++i) {
        domain_broadcast other(host_settings("h" + std::to_string(i)));
        (void)a.take(other.hello(), somewhere, false, clock::now());
    }
    BOOST_TEST(a.hosts(clock::now()).size() == 3u);
    BOOST_TEST(a.counters().too_many_hosts == 2u);
    // Names that are no names.
    domain_broadcast bad(host_settings("bad host"));
    (void)a.take(bad.hello(), somewhere, false, clock::now());
    datagram d;
    d.host = "h0";
    d.domain = "wg";
    d.seq = 1;
    d.path = R"(\\other\mailslot\x)"; // a record names a local path only
    (void)a.take(encode(d, nullptr), somewhere, false, clock::now());
    BOOST_TEST(a.counters().malformed == 2u);
}

BOOST_AUTO_TEST_CASE(the_sending_rate_holds_writers_back_past_its_burst)
{
    auto settings = host_settings("alpha");
    settings.rate = 1000;
    settings.burst = 100;
    domain_broadcast a(settings);
    const auto now = clock::now();
    BOOST_TEST(a.reserve(150, now) == 100u); // a frame larger than the burst goes in parts
    BOOST_TEST(a.reserve(1, now) == 0u);
    const auto ready = a.ready_at();
    BOOST_TEST((ready - now > 9ms && ready - now < 11ms)); // woken for 10 records at 1000/s
    BOOST_TEST(a.reserve(50, now + 5ms) == 5u);
    BOOST_TEST(a.reserve(50, now + 5ms) == 0u);
    BOOST_TEST(a.reserve(1000, now + 1h) == 100u); // a quiet spell saves up one burst, no more
}

// ---- the core's side --------------------------------------------------------------------

namespace {

struct sent_record {
    std::string domain, path, data;
};

struct fake_broadcaster final : broadcaster {
    std::vector<std::string> domains{"workgroup"};
    std::vector<sent_record> sent;
    std::uint32_t room = 1u << 30; // records the rate lets go
    std::vector<session_id> held;
    bool knows_domain(std::string_view d) const override
    {
        return std::find(domains.begin(), domains.end(), d) != domains.end();
    }
    std::uint32_t reserve(session_id id, std::uint32_t count) override
    {
        const auto granted = std::min(count, room);
        room -= granted;
        if (granted < count)
            held.push_back(id);
        return granted;
    }
    void send(std::string_view domain, std::string_view path, const std::string&,
              byte_span record) override
    {
        sent.push_back({std::string(domain), std::string(path), text_of(record)});
    }
};

core_limits limits()
{
    core_limits l;
    l.host_name = "alpha";
    l.domain = "WorkGroup";
    l.min_slot_budget = 64;
    return l;
}

std::shared_ptr<const policy> rules_of(std::string_view text)
{
    std::string why;
    auto p = policy::parse(text, ::geteuid(), why);
    BOOST_REQUIRE_MESSAGE(p, why);
    return std::make_shared<const policy>(std::move(*p));
}

std::uint32_t first_error(client& c)
{
    return c.acks().at(0).error;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_broadcast_write_is_sent_and_delivered_to_the_local_slot)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    client reader(host), writer(host);
    const auto star = writer.open(R"(\\*\mailslot\Taxes\Sue)").handle;
    BOOST_TEST(star != 0u);
    writer.write(star, "nobody here yet");
    auto runs = writer.acks();
    BOOST_TEST(runs.at(0).error == 0u); // sent: another host may have the slot
    BOOST_TEST(runs.at(0).delivered == 0u);
    BOOST_REQUIRE(net.sent.size() == 1u);
    BOOST_TEST(net.sent[0].domain == "workgroup");
    BOOST_TEST(net.sent[0].path == R"(Taxes\Sue)");

    reader.create(R"(taxes\sue)");
    const auto wg = writer.open(R"(\\WORKGROUP\mailslot\taxes\sue)").handle;
    writer.write(wg, "to all");
    runs = writer.acks();
    BOOST_TEST(runs.at(0).error == 0u);
    BOOST_TEST(runs.at(0).delivered == 1u); // the local copy
    BOOST_TEST(net.sent.size() == 2u);

    writer.write(star, std::string(425, 'x'));
    BOOST_TEST(first_error(writer) == 53u); // nothing sent
    BOOST_TEST(net.sent.size() == 2u);
    writer.write(star, std::string(424, 'x'));
    BOOST_TEST(first_error(writer) == 0u);
    BOOST_TEST(net.sent.size() == 3u);
}

BOOST_AUTO_TEST_CASE(another_domain_is_sent_to_and_never_delivered_here)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    client reader(host), writer(host);
    reader.create("x");
    BOOST_TEST(writer.open(R"(\\nowhere\mailslot\x)").error == 53u); // no peer, no domain
    net.domains.push_back("other");
    const auto other = writer.open(R"(\\OTHER\mailslot\x)").handle;
    BOOST_REQUIRE(other != 0u);
    writer.write(other, "for them");
    const auto runs = writer.acks();
    BOOST_TEST(runs.at(0).error == 0u);
    BOOST_TEST(runs.at(0).delivered == 0u); // this host's x is not of that domain
    BOOST_REQUIRE(net.sent.size() == 1u);
    BOOST_TEST(net.sent[0].domain == "other");
    BOOST_TEST(reader.info(1).message_count == 0u);
}

BOOST_AUTO_TEST_CASE(past_the_rate_the_writer_waits_and_goes_on_when_woken)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    client writer(host);
    const auto star = writer.open(R"(\\*\mailslot\x)").handle;
    net.room = 0;
    BOOST_TEST((writer.write(star, "wait") == feed_result::blocked));
    BOOST_TEST(net.sent.empty());
    BOOST_TEST(net.held.size() == 1u);
    net.room = 10;
    host.wake(writer.id);
    BOOST_TEST(host.take_resume(writer.id));
    BOOST_TEST((writer.write(star, "wait") == feed_result::next)); // the I/O layer feeds it again
    BOOST_TEST(net.sent.size() == 1u);
    BOOST_TEST(writer.acks().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_frame_larger_than_the_rate_allows_goes_in_parts_each_record_once)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    client reader(host), writer(host);
    reader.create("x");
    const auto star = writer.open(R"(\\*\mailslot\x)").handle;
    net.room = 2;
    const std::initializer_list<std::string_view> frame = {"1", "2", "3", "4", "5"};
    BOOST_TEST((writer.write_many(star, frame) == feed_result::blocked));
    BOOST_TEST(net.sent.size() == 2u);
    net.room = 2;
    BOOST_TEST((writer.write_many(star, frame) == feed_result::blocked)); // fed again
    BOOST_TEST(net.sent.size() == 4u);
    net.room = 100;
    BOOST_TEST((writer.write_many(star, frame) == feed_result::next));
    std::vector<std::string> sent;
    for (const auto& r : net.sent)
        sent.push_back(r.data);
    BOOST_TEST(sent == (std::vector<std::string>{"1", "2", "3", "4", "5"}),
               boost::test_tools::per_element());
    std::uint32_t writes = 0, delivered = 0;
    for (const auto& run : writer.acks()) {
        writes += run.count;
        delivered += run.count * run.delivered; // a run's records were delivered as often each
    }
    BOOST_TEST(writes == 5u); // one result for each record, however many parts it took
    BOOST_TEST(delivered == 5u);
    BOOST_TEST(reader.info(1).message_count == 5u);
}

BOOST_AUTO_TEST_CASE(a_reader_broadcasting_to_its_own_name_misses_only_its_own_copy)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    client reader(host);
    const auto r = reader.create("x").handle;
    const auto star = reader.open(R"(\\*\mailslot\x)").handle;
    reader.write(star, "to the others");
    const auto runs = reader.acks();
    BOOST_TEST(runs.at(0).error == 0u);
    BOOST_TEST(runs.at(0).delivered == 0u);
    BOOST_TEST(net.sent.size() == 1u);
    BOOST_TEST(reader.info(r).message_count == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_local_slot_drops_its_copy_and_holds_no_broadcast_back)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    client reader(host), writer(host);
    const auto r = reader.create("x", 0, 64).handle; // small, and holding writers back
    const auto star = writer.open(R"(\\*\mailslot\x)").handle;
    for (int i = 0; i < 10; ++i)
        BOOST_TEST((writer.write(star, std::string(20, 'r')) == feed_result::next));
    BOOST_TEST(net.sent.size() == 10u); // the other hosts got every one
    const auto kept = reader.info(r).message_count;
    BOOST_TEST(kept < 10u);
    BOOST_TEST(reader.info(r).dropped == 10u - kept); // and this host's reader is told
}

BOOST_AUTO_TEST_CASE(another_domain_s_handle_never_points_at_a_local_slot)
{
    core host(limits());
    fake_broadcaster net;
    net.domains.push_back("other");
    host.set_broadcaster(&net);
    client reader(host), writer(host);
    reader.create("x");
    const auto other = writer.open(R"(\\OTHER\mailslot\x)").handle;
    BOOST_TEST(writer.info(other).error == 2u);         // no slot of that domain here
    reader.feed(close_frame{reader.next_request++, 1}); // x is gone: a stale route would dangle
    writer.write(other, "after");
    BOOST_TEST(first_error(writer) == 0u);
    BOOST_TEST(net.sent.size() == 1u);
}

BOOST_AUTO_TEST_CASE(what_came_over_a_link_is_not_broadcast_again)
{
    core host(limits());
    fake_broadcaster net;
    host.set_broadcaster(&net);
    host.set_policy(rules_of(R"({"rules": [{"host": "*", "allow": ["write"]}]})"));
    client reader(host);
    reader.create("x");
    const auto peer = host.connect_peer("beta");
    byte_buffer bytes;
    encode(bytes, open_frame{1, 1, 0, R"(\\*\mailslot\x)"});
    auto found = decode_frame(bytes, host.limits().max_frame_size());
    host.feed(peer, found.frame);
    byte_buffer list;
    append_record(list, bytes_of("relayed?"));
    bytes.clear();
    encode(bytes, write_frame{1, payload{list}});
    found = decode_frame(bytes, host.limits().max_frame_size());
    host.feed(peer, found.frame);
    BOOST_TEST(net.sent.empty());
    BOOST_TEST(reader.info(1).message_count == 1u); // delivered here only
}

BOOST_AUTO_TEST_CASE(records_of_a_domain_need_a_domain_rule_and_tell_their_losses)
{
    core host(limits());
    client reader(host);
    const auto r = reader.create(R"(taxes\sue)").handle;
    const auto wg = host.connect_domain("WorkGroup");
    const auto name = slot_name::parse(R"(taxes\sue)");
    // The built-in default gives a domain's broadcasts nothing.
    BOOST_TEST(host.open_inbound(wg, 1, "beta", name) == error::access_denied);
    host.set_policy(rules_of(
        R"({"rules": [{"domain": "workgroup", "allow": ["write"], "names": ["taxes\\**"]}]})"));
    BOOST_TEST(host.open_inbound(wg, 2, "beta", slot_name::parse("other")) == error::access_denied);
    BOOST_REQUIRE(!host.open_inbound(wg, 1, "beta", name));
    std::error_code ec;
    BOOST_TEST(host.deliver_inbound(wg, 1, bytes_of("first"), 0, ec) == 1u);
    BOOST_TEST(host.deliver_inbound(wg, 1, bytes_of("after two lost"), 2, ec) == 1u);
    BOOST_TEST(!ec);
    reader.feed(read_report_frame{r, 0, 16});
    const auto frames = reader.take();
    std::vector<std::string> got;
    std::uint32_t missed = 0;
    for (const auto& f : frames) {
        if (f.type == frame_type::gap) {
            gap_frame g;
            BOOST_REQUIRE(decode(f.body, g));
            missed += g.missed;
            BOOST_TEST(got.size() == 1u); // told between the two, in order
        }
        if (f.type == frame_type::records)
            for (auto& s : records_of(f))
                got.push_back(s);
    }
    BOOST_TEST(got == (std::vector<std::string>{"first", "after two lost"}),
               boost::test_tools::per_element());
    BOOST_TEST(missed == 2u);
    const auto& sender = reader.origins.at(reader.last_origin);
    BOOST_TEST(sender.host == "beta");
    BOOST_TEST(sender.domain == "workgroup");
    BOOST_TEST(sender.uid == nobody_id);
    BOOST_TEST(reader.info(r).dropped == 2u);

    // A reload that takes the right away: the next record is refused.
    host.set_policy(rules_of(R"({"rules": []})"));
    BOOST_TEST(host.deliver_inbound(wg, 1, bytes_of("no more"), 0, ec) == 0u);
    BOOST_TEST(ec == error::access_denied);
}

BOOST_AUTO_TEST_CASE(a_full_slot_drops_a_broadcast_and_holds_no_one)
{
    core host(limits());
    host.set_policy(rules_of(R"({"rules": [{"domain": "*", "allow": ["write"]}]})"));
    client reader(host);
    const auto r = reader.create("x", 0, 64).handle; // a small budget
    const auto wg = host.connect_domain("workgroup");
    BOOST_REQUIRE(!host.open_inbound(wg, 1, "beta", slot_name::parse("x")));
    std::error_code ec;
    std::uint32_t delivered = 0;
    for (int i = 0; i < 10; ++i)
        delivered += host.deliver_inbound(wg, 1, bytes_of(std::string(20, 'r')), 0, ec);
    BOOST_TEST(delivered < 10u);
    BOOST_TEST(reader.info(r).dropped == 10u - delivered); // counted, told to the reader
}

BOOST_AUTO_TEST_CASE(a_forgotten_host_is_remembered_against_replays_and_its_losses_counted)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    const auto now = clock::now();
    const auto old = a.record("wg", "x", "x", bytes_of("1"));
    BOOST_TEST((b.take(old, somewhere, false, now).kind == what::record));
    BOOST_TEST((b.take(a.bye(), somewhere, false, now).kind == what::gone));
    // Replayed after its bye: still a duplicate, not a record.
    BOOST_TEST((b.take(old, somewhere, false, now).kind == what::nothing));
    BOOST_TEST(b.counters().duplicates == 1u);
    BOOST_TEST(!b.find("alpha")); // and the replay did not make it known again
    // Back, then away past its lease, two records lost meanwhile: counted when it is back.
    BOOST_TEST((b.take(a.hello(), somewhere, false, now).kind == what::hello));
    BOOST_TEST(b.expire(now + 1h).size() == 1u);
    (void)a.record("wg", "x", "x", bytes_of("2"));
    (void)a.record("wg", "x", "x", bytes_of("3"));
    const auto t = pass(a, b, "x", "4", now + 1h + 1s);
    BOOST_TEST((t.kind == what::record));
    BOOST_TEST(b.counters().lost == 2u);
}

const domain_broadcast::endpoint elsewhere(boost::asio::ip::make_address("198.18.0.99"), 47077);

BOOST_AUTO_TEST_CASE(a_replayed_beacon_or_bye_neither_keeps_a_host_nor_moves_it)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    const auto now = clock::now();
    const auto hello = a.hello();
    BOOST_TEST((b.take(hello, somewhere, false, now).kind == what::hello));
    // The same beacon again, later, from another address: refused.
    BOOST_TEST((b.take(hello, elsewhere, false, now + 2s).kind == what::nothing));
    BOOST_TEST(b.counters().replayed == 1u);
    BOOST_TEST(b.find("alpha")->address == somewhere);
    BOOST_TEST(b.expire(now + 2999ms).empty());
    BOOST_TEST(b.expire(now + 3001ms).size() == 1u); // its lease ran from the first
    // A bye replayed after the host came back does not make it gone.
    BOOST_TEST((b.take(a.hello(), somewhere, false, now + 4s).kind == what::hello));
    const auto bye = a.bye();
    BOOST_TEST((b.take(a.hello(), somewhere, false, now + 5s).kind == what::hello));
    BOOST_TEST((b.take(bye, elsewhere, false, now + 5s).kind == what::nothing));
    BOOST_TEST(b.find("alpha"));
    // Nor does a stale datagram, of an earlier boot, keep it known.
    domain_broadcast before(host_settings("alpha", "wg", 10));
    BOOST_TEST((pass(before, b, "x", "old", now + 7s).kind == what::nothing));
    BOOST_TEST(b.counters().stale == 1u);
    BOOST_TEST(b.expire(now + 8001ms).size() == 1u);
}

BOOST_AUTO_TEST_CASE(records_go_by_unicast_to_seeds_and_key_holders_only)
{
    // A beacon sent straight to this host from an address it does not
    // know: were it sent records by unicast, anyone could aim them anywhere.
    domain_broadcast a(host_settings("alpha")), c(host_settings("gamma"));
    const auto now = clock::now();
    BOOST_TEST((a.take(c.hello(), elsewhere, true, now).kind == what::hello));
    BOOST_TEST(a.unicast_members(now).empty());
    a.add_seed(elsewhere.address());
    BOOST_TEST((a.take(c.hello(), elsewhere, true, now).kind == what::hello));
    BOOST_TEST(a.unicast_members(now).size() == 1u);
    // With the domain key, a signed beacon proves a member wherever it is.
    auto keyed = host_settings("alpha");
    keyed.key = std::make_shared<const domain_key>(key_of(key_a));
    auto keyed_c = host_settings("gamma");
    keyed_c.key = keyed.key;
    domain_broadcast ka(keyed), kc(keyed_c);
    BOOST_TEST((ka.take(kc.hello(), elsewhere, true, now).kind == what::hello));
    BOOST_TEST(ka.unicast_members(now).size() == 1u);
    // Bounded however many there are.
    keyed.max_unicast_members = 2;
    keyed.max_hosts = 10;
    domain_broadcast bounded(keyed);
    for (int i = 0; i < 5; ++i) {
        auto s = host_settings("h" + std::to_string(i));
        s.key = keyed.key;
        domain_broadcast other(s);
        (void)bounded.take(other.hello(), elsewhere, true, now);
    }
    BOOST_TEST(bounded.unicast_members(now).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_jump_past_the_window_counts_its_losses_and_later_ones_are_late)
{
    domain_broadcast a(host_settings("alpha")), b(host_settings("beta"));
    BOOST_TEST((pass(a, b, "x", "1").kind == what::record));
    std::vector<byte_buffer> held;
    for (int i = 0; i < 2000; ++i)
        held.push_back(a.record("wg", "x", "x", bytes_of("lost")));
    const auto t = pass(a, b, "x", "2002");
    BOOST_TEST(t.missed == 2000u);
    BOOST_TEST(b.counters().lost == 2000u);
    // One of them, come after all, far behind: late, dropped.
    BOOST_TEST((b.take(held.front(), somewhere, false, clock::now()).kind == what::nothing));
    BOOST_TEST(b.counters().late == 1u);
    BOOST_TEST((pass(a, b, "x", "2003").missed == 0u));
}

BOOST_AUTO_TEST_CASE(past_max_names_a_sender_s_counters_start_again_and_tell_no_gap)
{
    auto settings = host_settings("beta");
    settings.max_names = 2;
    domain_broadcast a(host_settings("alpha")), b(settings);
    BOOST_TEST(pass(a, b, "x", "x1").missed == 0u);
    BOOST_TEST(pass(a, b, "y", "y1").missed == 0u);
    (void)a.record("wg", "x", "x", bytes_of("x2 lost"));
    BOOST_TEST(pass(a, b, "z", "z1").missed == 0u); // a third name: the others are forgotten
    BOOST_TEST(pass(a, b, "x", "x3").missed == 0u); // x's loss is not known any more
    BOOST_TEST(b.counters().lost == 1u);            // though the sender's numbering knows it
    // All senders together are bounded too.
    settings.max_names = 100;
    settings.max_names_in_all = 3;
    domain_broadcast c(settings), d(host_settings("delta"));
    for (const auto* name : {"p", "q", "r"})
        (void)pass(a, c, name, "a");
    (void)d.record("wg", "p", "p", bytes_of("lost"));
    (void)pass(d, c, "p", "d"); // a new name past the bound: alpha's, the most, start again
    (void)a.record("wg", "q", "q", bytes_of("lost"));
    BOOST_TEST(pass(a, c, "q", "a").missed == 0u);
}

BOOST_AUTO_TEST_CASE(a_lease_is_clamped_to_between_a_second_and_ten_minutes)
{
    auto quick = host_settings("alpha");
    quick.interval = 10ms; // a lease of 30 ms, it says
    auto slow = host_settings("gamma");
    slow.interval = 24h;
    domain_broadcast a(quick), c(slow), b(host_settings("beta"));
    const auto now = clock::now();
    BOOST_TEST((b.take(a.hello(), somewhere, false, now).kind == what::hello));
    BOOST_TEST((b.take(c.hello(), somewhere, false, now).kind == what::hello));
    BOOST_TEST(b.expire(now + 999ms).empty());
    BOOST_TEST(b.expire(now + 1001ms).size() == 1u);
    BOOST_TEST(b.expire(now + 599s).empty());
    BOOST_TEST(b.expire(now + 601s).size() == 1u);
}

BOOST_AUTO_TEST_CASE(forgotten_hosts_are_bounded_the_oldest_going_first)
{
    auto settings = host_settings("beta");
    settings.max_hosts = 1; // remembered after they go: four
    domain_broadcast b(settings);
    const auto now = clock::now();
    std::vector<byte_buffer> first;
    for (int i = 0; i < 6; ++i) {
        domain_broadcast h(host_settings("h" + std::to_string(i)));
        first.push_back(h.record("wg", "x", "x", bytes_of("r")));
        BOOST_TEST((b.take(first.back(), somewhere, false, now + i * 1ms).kind == what::record));
        BOOST_TEST((b.take(h.bye(), somewhere, false, now + i * 1ms).kind == what::gone));
    }
    // h0 and h1 are not remembered any more: their replays are taken as new.
    BOOST_TEST((b.take(first[0], somewhere, false, now + 1s).kind == what::record));
    BOOST_TEST((b.take(first[0], somewhere, false, now + 1s).kind == what::nothing));
    (void)b.take(domain_broadcast(host_settings("h0")).bye(), somewhere, false, now + 1s);
    BOOST_TEST((b.take(first[5], somewhere, false, now + 1s).kind == what::nothing)); // still known
}
