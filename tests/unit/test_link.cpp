#define BOOST_TEST_MODULE link
// Two hosts' cores joined by a link, step by step: frames shuttled by hand,
// streams cut and restored by hand, no sockets.
#include "core_client.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "core/core.hpp"
#include "host/link.hpp"
#include "transport/tls/clients.hpp"
#include "transport/tls/peers.hpp"

using namespace slotbus;
using namespace slotbus::bus;
using namespace slotbus::test;

namespace {

// The host's side of remote_hosts, for one peer.
struct one_peer final : remote_hosts {
    host_link* to = nullptr;
    std::string peer;
    std::uint64_t acquire(std::string_view host, const slot_name& name,
                          std::error_code& ec) override
    {
        if (host != peer) {
            ec = error::bad_netpath;
            return 0;
        }
        return to->acquire(name, ec);
    }
    void release(std::uint64_t destination) override
    {
        to->release(static_cast<std::uint32_t>(destination));
    }
    bool write(std::uint64_t destination, byte_span records, std::uint32_t count,
               write_ticket ticket) override
    {
        return to->write(static_cast<std::uint32_t>(destination), records, count, ticket);
    }
};

host_link::settings credit_of(std::uint32_t credit)
{
    host_link::settings s;
    s.flow_credit = credit;
    return s;
}

core_limits limits(std::string name)
{
    core_limits l;
    l.host_name = std::move(name);
    l.min_slot_budget = 1;
    return l;
}

std::shared_ptr<const policy> alpha_may_write_events()
{
    std::string why;
    auto p = policy::parse(R"({"rules": [{"host": "alpha", "allow": ["write"],
                                          "names": ["events\\**"]}]})",
                           ::getuid(), why);
    BOOST_REQUIRE_MESSAGE(p, why);
    return std::make_shared<const policy>(std::move(*p));
}

using clock_type = host_link::clock;

// Host ALPHA writes, host BETA has the slots.
struct two_hosts {
    clock_type::time_point now = clock_type::now();
    core alpha{limits("alpha")};
    std::unique_ptr<core> beta = std::make_unique<core>(limits("beta"));
    std::unique_ptr<host_link> to_beta, to_alpha;
    one_peer route;
    bool wire_up = true; // false: what is sent is lost
    core_limits beta_limits;

    explicit two_hosts(host_link::settings at_beta = {},
                       core_limits at_beta_limits = limits("beta"))
        : beta_limits(std::move(at_beta_limits))
    {
        host_link::settings at_alpha;
        at_alpha.self = "alpha";
        at_alpha.peer = "beta";
        to_beta = std::make_unique<host_link>(alpha, at_alpha);
        route.to = to_beta.get();
        route.peer = "beta";
        alpha.set_remote(&route);
        restart_beta(std::move(at_beta));
    }
    void restart_beta(host_link::settings at_beta = {})
    {
        to_alpha.reset();
        beta = std::make_unique<core>(beta_limits);
        beta->set_policy(alpha_may_write_events());
        at_beta.self = "beta";
        at_beta.peer = "alpha";
        to_alpha = std::make_unique<host_link>(*beta, at_beta);
    }
    void connect()
    {
        wire_up = true;
        to_beta->connected(now);
        to_alpha->connected(now);
        shuttle();
        BOOST_REQUIRE(to_beta->up() && to_alpha->up());
    }
    void cut()
    {
        to_beta->disconnected(now);
        to_alpha->disconnected(now);
    }
    // Feeds what one link sent to the other; false when the receiver refused it.
    // Every frame fits what the receiving host reads as one.
    static bool deliver(host_link& from, host_link& to, clock_type::time_point at, bool up,
                        std::size_t max_frame = 1u << 24)
    {
        byte_buffer bytes;
        from.take_output(bytes);
        if (!up)
            return true;
        for (byte_span rest(bytes); !rest.empty();) {
            auto found = decode_frame(rest, max_frame);
            BOOST_REQUIRE(found.status == decoded_frame::ok);
            if (!to.feed(found.frame, at))
                return false;
            rest = rest.subspan(found.size);
        }
        return true;
    }
    /// Until neither side has anything to say (the peer's flows collected).
    void shuttle()
    {
        for (int round = 0; round < 100; ++round) {
            for (auto id : beta->take_touched())
                if (to_alpha->owns(id))
                    to_alpha->collect(id);
            if (!to_beta->has_output() && !to_alpha->has_output())
                return;
            BOOST_REQUIRE_MESSAGE(
                deliver(*to_beta, *to_alpha, now, wire_up, beta->limits().max_frame_size() + 64),
                to_alpha->why());
            BOOST_REQUIRE_MESSAGE(
                deliver(*to_alpha, *to_beta, now, wire_up, alpha.limits().max_frame_size() + 64),
                to_beta->why());
        }
        BOOST_FAIL("the links never went quiet");
    }
};

std::vector<std::string> pushed(client& reader)
{
    std::vector<std::string> out;
    for (auto& f : reader.take())
        if (f.type == frame_type::records)
            for (auto& r : records_of(f))
                out.push_back(r);
    return out;
}

// Every write's result, one per write, in order (runs expanded).
std::vector<ack_run> results(client& writer)
{
    std::vector<ack_run> out;
    for (const auto& run : writer.acks())
        for (std::uint32_t i = 0; i < run.count; ++i)
            out.push_back({1, run.error, run.delivered});
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_write_to_another_host_is_delivered_there_with_its_result)
{
    two_hosts h;
    h.connect();
    client reader(*h.beta);
    BOOST_REQUIRE_EQUAL(reader.create("events\\orders").error, 0u);
    reader.feed(read_report_frame{1, 0, 64});
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\BETA\\mailslot\\events\\orders").error, 0u);
    BOOST_TEST((writer.write_many(1, {"one", "two", "three"}) == feed_result::next));
    // Nothing yet: the result is the remote host's to give.
    BOOST_TEST(results(writer).empty());
    h.shuttle();
    const auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 3u);
    for (const auto& r : got) {
        BOOST_TEST(r.error == 0u);
        BOOST_TEST(r.delivered == 1u);
    }
    BOOST_TEST((pushed(reader) == std::vector<std::string>{"one", "two", "three"}));
    // Stamped by the host as coming from its peer, not from a local writer.
    const auto& from = reader.origins.at(reader.last_origin);
    BOOST_TEST(from.host == "alpha");
    BOOST_TEST(from.uid == 65534u);
    BOOST_TEST(from.name == "events\\orders");
}

BOOST_AUTO_TEST_CASE(remote_errors_come_back_per_record_and_local_results_keep_their_place)
{
    two_hosts h;
    h.connect();
    client writer(h.alpha);
    client local(h.alpha);
    BOOST_REQUIRE_EQUAL(local.create("here").error, 0u);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\nobody").error, 0u); // 1
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\secret").error, 0u);         // 2
    BOOST_REQUIRE_EQUAL(writer.open("here").error, 0u);                               // 3
    BOOST_TEST(writer.open("\\\\gamma\\mailslot\\x").error == 53u); // no such peer
    writer.write(1, "a");                                           // no slot of that name there
    writer.write(3, "b"); // local, but behind a remote result
    writer.write(2, "c"); // not allowed to this host there
    BOOST_TEST(results(writer).empty());
    h.shuttle();
    const auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 3u);
    BOOST_TEST(got[0].error == 2u);
    BOOST_TEST(got[1].error == 0u);
    BOOST_TEST(got[1].delivered == 1u);
    BOOST_TEST(got[2].error == 65u);
}

BOOST_AUTO_TEST_CASE(a_record_over_the_peers_maximum_fails_alone_in_its_place)
{
    two_hosts h;
    h.connect();
    client reader(*h.beta);
    BOOST_REQUIRE_EQUAL(reader.create("events\\big").error, 0u);
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\big").error, 0u);
    const std::string huge(h.beta->limits().max_record_size + 1, 'x');
    writer.write_many(1, {"before", huge, "after"});
    h.shuttle();
    const auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 3u);
    BOOST_TEST(got[0].error == 0u);
    BOOST_TEST(got[1].error == 4336u);
    BOOST_TEST(got[2].error == 0u);
    reader.feed(read_report_frame{1, 0, 64});
    BOOST_TEST((pushed(reader) == std::vector<std::string>{"before", "after"}));
}

BOOST_AUTO_TEST_CASE(a_full_remote_slot_holds_back_only_its_own_writers)
{
    two_hosts h(credit_of(1024));
    h.connect();
    client owner(*h.beta);
    // A slot that takes a few records and is never read, and one that is.
    BOOST_REQUIRE_EQUAL(owner.create("events\\full", 0, 200).error, 0u);
    BOOST_REQUIRE_EQUAL(owner.create("events\\free").error, 0u);
    owner.feed(read_report_frame{2, 0, 4096});
    client stuck(h.alpha), flowing(h.alpha);
    BOOST_REQUIRE_EQUAL(stuck.open("\\\\beta\\mailslot\\events\\full").error, 0u);
    BOOST_REQUIRE_EQUAL(flowing.open("\\\\beta\\mailslot\\events\\free").error, 0u);
    const std::string record(100, 'r');
    int taken = 0;
    for (; taken < 100; ++taken) {
        if (stuck.write(1, record) == feed_result::blocked)
            break;
        h.shuttle();
    }
    BOOST_TEST_REQUIRE(taken < 100);     // held back by the credit, at ALPHA
    auto stuck_results = results(stuck); // the one record the slot took
    BOOST_TEST(stuck_results.size() == 1u);
    // BETA holds at most the flow's credit of it, waiting for the slot.
    BOOST_TEST(h.to_alpha->status().at("flows_in").as_uint64() == 2u);
    for (int i = 0; i < 50; ++i) {
        BOOST_TEST((flowing.write(1, "go") == feed_result::next));
        h.shuttle();
    }
    const auto flowed = results(flowing);
    BOOST_REQUIRE_EQUAL(flowed.size(), 50u);
    BOOST_TEST(flowed.back().error == 0u);
    BOOST_TEST(pushed(owner).size() == 50u);
    // The full slot drains, a record at a time: its writer goes on.
    owner.feed(read_report_frame{1, 0, 4096});
    bool resent = false;
    for (int round = 0; round < 100 && stuck_results.size() < std::size_t(taken) + 1; ++round) {
        const auto n = static_cast<std::uint32_t>(pushed(owner).size());
        owner.feed(read_report_frame{1, n, 4096});
        h.shuttle();
        if (!resent && h.alpha.take_resume(stuck.id)) { // the frame it was held on, again
            resent = true;
            BOOST_TEST((stuck.write(1, record) == feed_result::next));
            h.shuttle();
        }
        for (const auto& r : results(stuck))
            stuck_results.push_back(r);
    }
    BOOST_TEST(resent);
    BOOST_TEST(stuck_results.size() == static_cast<std::size_t>(taken) + 1);
    for (const auto& r : stuck_results)
        BOOST_TEST(r.error == 0u);
}

BOOST_AUTO_TEST_CASE(results_are_acknowledged_as_they_come_so_the_peer_keeps_few)
{
    two_hosts h;
    h.connect();
    client reader(*h.beta);
    BOOST_REQUIRE_EQUAL(reader.create("events\\many").error, 0u);
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\many").error, 0u);
    std::size_t got = 0;
    for (int i = 0; i < 5000; ++i) { // no heartbeat in between
        writer.write(1, "r");
        h.shuttle();
        got += results(writer).size();
        reader.feed(read_report_frame{1, static_cast<std::uint32_t>(pushed(reader).size()), 64});
    }
    BOOST_TEST(got == 5000u);
    BOOST_TEST(h.to_alpha->status().at("results_kept").as_uint64() <= host_link::ack_every);
}

BOOST_AUTO_TEST_CASE(a_lost_stream_resumes_and_nothing_is_lost_or_doubled)
{
    two_hosts h;
    h.connect();
    client reader(*h.beta);
    BOOST_REQUIRE_EQUAL(reader.create("events\\log").error, 0u);
    reader.feed(read_report_frame{1, 0, 4096});
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\log").error, 0u);
    writer.write_many(1, {"1", "2"});
    h.shuttle(); // delivered, results back
    writer.write_many(1, {"3", "4"});
    h.deliver(*h.to_beta, *h.to_alpha, h.now, true); // BETA takes them...
    h.wire_up = false;
    h.shuttle();                 // ...but their results are lost
    writer.write_many(1, {"5"}); // and this never arrives
    h.shuttle();
    h.cut();
    // A write while the link is down fails at once: nothing is kept for it.
    writer.write(1, "lost");
    h.connect();
    auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 6u);
    for (std::size_t i = 0; i < 6; ++i)
        BOOST_TEST(got[i].error == (i == 5 ? 53u : 0u), "write " << i);
    BOOST_TEST((pushed(reader) == std::vector<std::string>{"1", "2", "3", "4", "5"}));
    BOOST_TEST(h.to_beta->status().at("resumed").as_uint64() == 1u);
    BOOST_TEST(h.to_beta->status().at("resent").as_uint64() == 1u); // "5" only
}

BOOST_AUTO_TEST_CASE(writes_in_flight_to_a_restarted_host_fail_as_unknown)
{
    two_hosts h;
    h.connect();
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\x").error, 0u);
    h.wire_up = false;
    writer.write_many(1, {"a", "b"});
    h.shuttle();
    h.cut();
    h.restart_beta(); // BETA lost everything it had of ALPHA's
    h.connect();
    const auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].error == 64u);
    BOOST_TEST(got[1].error == 64u);
    // The flow opens afresh: the next write gets BETA's own answer.
    writer.write(1, "c");
    h.shuttle();
    BOOST_TEST(results(writer).at(0).error == 2u);
}

BOOST_AUTO_TEST_CASE(a_link_down_past_the_resume_window_fails_what_waited)
{
    two_hosts h;
    h.connect();
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\x").error, 0u);
    h.wire_up = false;
    writer.write(1, "a");
    h.shuttle();
    h.cut();
    h.to_beta->tick(h.now + std::chrono::seconds(29));
    BOOST_TEST(results(writer).empty());
    // A stream that breaks before its hello does not start the window again.
    h.to_beta->connected(h.now + std::chrono::seconds(30));
    h.to_beta->disconnected(h.now + std::chrono::seconds(30));
    h.to_beta->tick(h.now + std::chrono::seconds(31));
    BOOST_TEST(results(writer).at(0).error == 64u);
}

BOOST_AUTO_TEST_CASE(a_peer_that_breaks_the_rules_is_cut_off)
{
    two_hosts h;
    h.connect();
    // Writes to a flow never opened.
    byte_buffer list;
    append_record(list, byte_span(reinterpret_cast<const std::uint8_t*>("x"), 1));
    byte_buffer frame;
    encode(frame, link_write_frame{7, 1, {list}});
    auto found = decode_frame(frame, 1u << 20);
    BOOST_TEST(!h.to_alpha->feed(found.frame, h.now));
    BOOST_TEST(h.to_alpha->why() == "link_write to a flow not opened");
    // Past the credit it granted.
    two_hosts g(credit_of(100));
    g.connect();
    client owner(*g.beta); // a slot never read: what does not fit waits at BETA
    BOOST_REQUIRE_EQUAL(owner.create("events\\x", 0, 100).error, 0u);
    byte_buffer open;
    encode(open, link_open_frame{1, "events\\x"});
    BOOST_TEST(g.to_alpha->feed(decode_frame(open, 1u << 20).frame, g.now));
    const std::string big(60, 'b');
    byte_buffer records;
    append_record(records, byte_span(reinterpret_cast<const std::uint8_t*>(big.data()), 60));
    bool refused = false;
    for (std::uint64_t seq = 1; seq < 5 && !refused; ++seq) {
        byte_buffer w;
        encode(w, link_write_frame{1, seq, {records}});
        refused = !g.to_alpha->feed(decode_frame(w, 1u << 20).frame, g.now);
    }
    BOOST_TEST(refused);
    BOOST_TEST(g.to_alpha->why() == "link_write past the flow's credit");
}

BOOST_AUTO_TEST_CASE(frames_fit_the_peer_however_large_this_hosts_are)
{
    auto small = limits("beta");
    small.max_record_size = 65536; // alpha's is 1 MiB
    two_hosts h({}, small);
    h.connect();
    client reader(*h.beta);
    BOOST_REQUIRE_EQUAL(reader.create("events\\bulk").error, 0u);
    client writer(h.alpha);
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\bulk").error, 0u);
    const std::string record(60 * 1024, 'b');
    writer.write_many(1, {record, record, record, record, record, record, record, record});
    h.shuttle(); // deliver() checks each frame against beta's maximum
    const auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 8u);
    for (const auto& r : got)
        BOOST_TEST(r.error == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_slot_does_not_make_the_peer_keep_every_later_result)
{
    two_hosts h;
    h.connect();
    client owner(*h.beta);
    BOOST_REQUIRE_EQUAL(owner.create("events\\full", 0, 100).error, 0u); // never read
    BOOST_REQUIRE_EQUAL(owner.create("events\\busy").error, 0u);
    client stuck(h.alpha), busy(h.alpha);
    BOOST_REQUIRE_EQUAL(stuck.open("\\\\beta\\mailslot\\events\\full").error, 0u);
    BOOST_REQUIRE_EQUAL(busy.open("\\\\beta\\mailslot\\events\\busy").error, 0u);
    stuck.write(1, std::string(80, 'x'));
    stuck.write(1, std::string(80, 'y')); // held at beta: its result waits
    h.shuttle();
    for (int i = 0; i < 3000; ++i) {
        busy.write(1, "r");
        h.shuttle();
        owner.feed(read_report_frame{2, static_cast<std::uint32_t>(pushed(owner).size()), 64});
    }
    BOOST_TEST(results(busy).size() == 3000u);
    BOOST_TEST(h.to_alpha->status().at("results_kept").as_uint64() <= host_link::ack_every + 1);
    BOOST_TEST(h.to_alpha->up());
}

BOOST_AUTO_TEST_CASE(opens_and_closes_lost_with_a_stream_are_made_good_on_resume)
{
    two_hosts h;
    h.connect();
    client reader(*h.beta);
    BOOST_REQUIRE_EQUAL(reader.create("events\\late").error, 0u);
    client writer(h.alpha);
    h.wire_up = false; // the open, and the write after it, are lost
    BOOST_REQUIRE_EQUAL(writer.open("\\\\beta\\mailslot\\events\\late").error, 0u);
    writer.write(1, "kept");
    h.shuttle();
    h.cut();
    h.connect();
    const auto got = results(writer);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].error == 0u);
    BOOST_TEST(h.to_alpha->status().at("flows_in").as_uint64() == 1u);
    // Its close is lost: after the next resume the peer lets the idle flow go.
    h.wire_up = false;
    writer.feed(close_frame{writer.next_request++, 1});
    writer.take();
    h.shuttle();
    h.cut();
    h.connect();
    h.to_beta->heartbeat(h.now);
    h.shuttle();
    BOOST_TEST(h.to_alpha->status().at("flows_in").as_uint64() == 0u);
}

BOOST_AUTO_TEST_CASE(a_peers_file_that_is_wrong_says_where)
{
    const std::string fp = "sha256:" + std::string(64, 'a');
    std::string why;
    auto ok = parse_peers(R"({"peers": [{"host": "Beta", "address": "198.18.0.2:47078",
                                         "fingerprint": ")" +
                              fp + R"("}]})",
                          "alpha", why);
    BOOST_REQUIRE_MESSAGE(ok, why);
    BOOST_TEST(ok->at(0).host == "beta");
    const auto refused = [&](const std::string& entry) {
        std::string reason;
        BOOST_TEST(!parse_peers(R"({"peers": [)" + entry + "]}", "alpha", reason), entry);
        return reason;
    };
    const auto beta = R"({"host": "beta", "fingerprint": ")" + fp + R"("})";
    BOOST_TEST(refused(R"({"host": "alpha", "fingerprint": ")" + fp + R"("})")
                   .find("this host's own name") != std::string::npos);
    BOOST_TEST(refused(beta + "," + beta).find("peer 2") != std::string::npos);
    BOOST_TEST(refused(R"({"host": "beta", "fingerprint": "sha256:xyz"})").find("fingerprint") !=
               std::string::npos);
    BOOST_TEST(refused(R"({"host": "beta", "address": "nowhere", "fingerprint": ")" + fp + R"("})")
                   .find("address") != std::string::npos);
    BOOST_TEST(refused(R"({"host": "beta", "fingerprnt": ")" + fp + R"("})").find("typo") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_clients_file_that_is_wrong_says_where)
{
    const std::string fp = "sha256:" + std::string(64, 'b'),
                      other = "sha256:" + std::string(64, 'c');
    std::string why;
    auto ok = parse_clients(R"({"clients": [{"name": "CI-Runner", "fingerprint": ")" + fp +
                                R"("}, {"name": "web", "fingerprint": ")" + other + R"("}]})",
                            why);
    BOOST_REQUIRE_MESSAGE(ok, why);
    BOOST_TEST(ok->at(fp) == "ci-runner"); // names fold case, as rules do
    BOOST_TEST(ok->at(other) == "web");
    const auto refused = [&](const std::string& entries) {
        std::string reason;
        BOOST_TEST(!parse_clients(R"({"clients": [)" + entries + "]}", reason), entries);
        return reason;
    };
    const auto ci = R"({"name": "ci", "fingerprint": ")" + fp + R"("})";
    BOOST_TEST(refused(ci + "," + ci).find("client 2: \"ci\" is listed twice") !=
               std::string::npos);
    BOOST_TEST(refused(ci + R"(, {"name": "ci2", "fingerprint": ")" + fp + R"("})")
                   .find("another client's") != std::string::npos);
    BOOST_TEST(refused(R"({"name": "ci", "fingerprint": "SHA256:AB"})").find("fingerprint") !=
               std::string::npos);
    BOOST_TEST(
        refused(R"({"name": "no spaces", "fingerprint": ")" + fp + R"("})").find("\"name\"") !=
        std::string::npos);
    BOOST_TEST(refused(R"({"name": "ci", "key": ")" + fp + R"("})").find("typo") !=
               std::string::npos);
    std::string reason;
    BOOST_TEST(!parse_clients(R"({"peers": []})", reason));
    BOOST_TEST(reason.find("\"clients\"") != std::string::npos);
}
