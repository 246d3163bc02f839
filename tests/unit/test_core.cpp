#define BOOST_TEST_MODULE core
// The routing core step by step: frames in, frames out, no sockets.
#include "core_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/core.hpp"

using namespace slotbus;
using namespace slotbus::bus;
using namespace slotbus::test;

namespace {

core_limits limits()
{
    core_limits l;
    l.host_name = "ThisHost";
    l.min_slot_budget = 1; // budgets of a few records, so tests fill slots with a few
    return l;
}

std::uint32_t first_ack_error(client& c)
{
    auto runs = c.acks();
    BOOST_REQUIRE(!runs.empty());
    return runs.front().error;
}

} // namespace

BOOST_AUTO_TEST_CASE(hello_comes_first_and_versions_must_meet)
{
    core host(limits());
    client rude(host, false);
    BOOST_TEST((rude.feed(open_frame{1, 1, 0, "a"}) == feed_result::close));
    BOOST_TEST(rude.last<fatal_frame>().error == 13u);

    client future(host, false);
    BOOST_TEST(
        (future.feed(hello_frame{protocol_magic, 8, 9, 0, 0, "x", ""}) == feed_result::close));
    BOOST_TEST(future.last<fatal_frame>().error == 50u);
    client old(host, false); // an SDK of protocol 1
    BOOST_TEST((old.feed(hello_frame{protocol_magic, 1, 1, 0, 0, "x", ""}) == feed_result::close));
    BOOST_TEST(old.last<fatal_frame>().message.find("the host speaks " +
                                                    std::to_string(protocol_version)) !=
               std::string_view::npos);

    client twice(host);
    BOOST_TEST((twice.feed(hello_frame{}) == feed_result::close));
}

BOOST_AUTO_TEST_CASE(create_open_and_the_name_errors)
{
    core host(limits());
    client a(host);
    BOOST_TEST(a.create(R"(\\.\mailslot\taxes\sue)").error == 0u);
    BOOST_TEST(a.create(R"(\\.\MAILSLOT\TAXES\SUE)").error == 183u);
    BOOST_TEST(a.create(R"(\\ThisHost\mailslot\x)").error == 123u);
    BOOST_TEST(a.create(R"(\\*\mailslot\x)").error == 123u);
    BOOST_TEST(a.create("a//b").error == 123u);
    BOOST_TEST(a.create(std::string(300, 'x')).error == 206u);
    BOOST_TEST(a.open("nobody/home").error == 2u);
    BOOST_TEST(a.open(R"(\\.\mailslot\Taxes\Sue)").error == 0u);
    BOOST_TEST(a.open(R"(\\thishost\mailslot\taxes\sue)").error == 0u); // this machine by name
    BOOST_TEST(a.open(R"(\\elsewhere\mailslot\taxes\sue)").error == 53u);
    BOOST_TEST(a.open(R"(\\*\mailslot\no\receiver)").error == 0u); // a broadcast cannot know
}

BOOST_AUTO_TEST_CASE(writes_are_acknowledged_in_one_batch)
{
    core host(limits());
    client reader(host), writer(host);
    reader.create("q");
    const auto h = writer.open("q").handle;
    byte_buffer batch;
    for (int i = 0; i < 100; ++i) // a frame each
        record_list_builder(frame_type::write).append(batch, h, {});
    record_list_builder(frame_type::write).append(batch, h + 50, {}); // no such handle
    byte_span rest(batch);
    while (!rest.empty()) {
        auto found = decode_frame(rest, 1 << 20);
        BOOST_TEST((host.feed(writer.id, found.frame) == feed_result::next));
        rest = rest.subspan(found.size);
    }
    BOOST_TEST(host.outbox(writer.id).empty()); // nothing until the batch ends
    host.end_batch(writer.id);
    auto frames = writer.take();
    BOOST_TEST_REQUIRE(frames.size() == 1u);
    const auto runs = ack_runs_of(frames[0]);
    BOOST_TEST_REQUIRE(runs.size() == 2u);
    BOOST_TEST(runs[0].count == 100u);
    BOOST_TEST(runs[0].delivered == 1u);
    BOOST_TEST(runs[1].error == 6u);
    BOOST_TEST(writer.info(h).message_count == 100u);
}

BOOST_AUTO_TEST_CASE(every_record_of_a_write_frame_is_a_write_of_its_own)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q", 4).handle;
    const auto w = writer.open("q").handle;
    // The middle one is over the slot's maximum: it alone fails.
    BOOST_TEST((writer.write_many(w, {"ab", "too long", "", "abcd"}) == feed_result::next));
    const auto runs = writer.acks();
    BOOST_TEST_REQUIRE(runs.size() == 3u);
    BOOST_TEST(runs[0].count == 1u);
    BOOST_TEST(runs[0].delivered == 1u);
    BOOST_TEST(runs[1].error == 4336u);
    BOOST_TEST(runs[2].count == 2u);
    BOOST_TEST(runs[2].delivered == 1u);
    reader.feed(read_report_frame{r, 0, 16});
    auto frames = reader.take();
    BOOST_TEST_REQUIRE(frames.size() == 1u);
    BOOST_TEST((records_of(frames[0]) == std::vector<std::string>{"ab", "", "abcd"}));

    // The same in a frame long enough to fill several blocks of the slot's
    // queue before the record over the maximum comes: it alone fails still.
    client big_reader(host), big_writer(host);
    big_reader.create("big", 200);
    const auto bw = big_writer.open("big").handle;
    byte_buffer list;
    for (int i = 0; i < 1500; ++i) {
        const std::string record(i == 1399 ? 201 : 100, 'r');
        append_record(list, {reinterpret_cast<const std::uint8_t*>(record.data()), record.size()});
    }
    BOOST_TEST((big_writer.feed(write_frame{bw, payload{list}}) == feed_result::next));
    const auto big_runs = big_writer.acks();
    BOOST_TEST_REQUIRE(big_runs.size() == 3u);
    BOOST_TEST(big_runs[0].count == 1399u);
    BOOST_TEST(big_runs[1].error == 4336u);
    BOOST_TEST(big_runs[2].count == 100u);
    BOOST_TEST(big_writer.info(bw).message_count == 1499u);

    // No such handle: every record of the frame says so.
    writer.write_many(w + 50, {"a", "b", "c"});
    const auto refused = writer.acks();
    BOOST_TEST_REQUIRE(refused.size() == 1u);
    BOOST_TEST(refused[0].count == 3u);
    BOOST_TEST(refused[0].error == 6u);
}

BOOST_AUTO_TEST_CASE(posted_writes_results_wait_for_the_next_output_in_order)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q").handle;
    const auto w = writer.open("q").handle;
    reader.create("back");
    const auto back = writer.open("back").handle;
    const auto answer = writer.create("answer").handle; // the writer reads here
    const auto reply = reader.open("answer").handle;
    auto post = [&](std::uint32_t handle, std::string_view data) {
        byte_buffer list;
        append_record(list, {reinterpret_cast<const std::uint8_t*>(data.data()), data.size()});
        return writer.feed(post_frame{handle, payload{list}});
    };
    // Posted: queued at once, the results held.
    BOOST_TEST((post(w, "one") == feed_result::next));
    BOOST_TEST((post(w + 50, "nowhere") == feed_result::next)); // fails: still held
    BOOST_TEST(host.outbox(writer.id).empty());
    reader.feed(read_report_frame{r, 0, 16});
    BOOST_TEST_REQUIRE(reader.take().size() == 1u);

    // A record pushed to the writer's connection carries them along.
    writer.feed(read_report_frame{answer, 0, 16});
    reader.write(reply, "pushed");
    (void)reader.acks();
    auto frames = writer.take();
    BOOST_TEST_REQUIRE(frames.size() == 2u);
    BOOST_TEST((records_of(frames[0]) == std::vector<std::string>{"pushed"}));
    auto runs = ack_runs_of(frames[1]);
    BOOST_TEST_REQUIRE(runs.size() == 2u);
    BOOST_TEST(runs[0].delivered == 1u);
    BOOST_TEST(runs[1].error == 6u);

    // An answer never overtakes them: a pong comes after the held results.
    post(w, "two");
    writer.feed(ping_frame{7});
    frames = writer.take();
    BOOST_TEST_REQUIRE(frames.size() == 2u);
    BOOST_TEST((frames[0].type == frame_type::write_acks));
    BOOST_TEST((frames[1].type == frame_type::pong));
    // Nor does a prompt write's result wait: it takes the posted ones with it.
    post(w, "three");
    BOOST_TEST(host.outbox(writer.id).empty());
    writer.write(w, "four");
    runs = writer.acks();
    BOOST_TEST_REQUIRE(runs.size() == 1u);
    BOOST_TEST(runs[0].count == 2u);

    // The host holds at most max_held_post_bytes of them.
    const std::string big(64 * 1024, 'b');
    std::size_t posted = 0;
    while (host.outbox(writer.id).empty() && posted < 2 * core::max_held_post_bytes) {
        post(back, big);
        posted += big.size();
    }
    BOOST_TEST(posted >= core::max_held_post_bytes - big.size());
    BOOST_TEST(posted <= core::max_held_post_bytes + big.size());
    runs = writer.acks();
    BOOST_TEST_REQUIRE(runs.size() == 1u);
    BOOST_TEST(runs[0].count * big.size() == posted);
}

BOOST_AUTO_TEST_CASE(a_post_held_back_by_a_full_slot_counts_once_toward_the_results_bound)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q", 0, 100).handle;
    const auto w = writer.open("q").handle;
    writer.write(w, "first");
    (void)writer.acks();
    // Over half the bound: counted twice (held back, then let in), it would
    // reach the bound and flush the results.
    const std::string big(core::max_held_post_bytes / 2 + 4096, 'p');
    byte_buffer list;
    append_record(list, {reinterpret_cast<const std::uint8_t*>(big.data()), big.size()});
    BOOST_TEST((writer.feed(post_frame{w, payload{list}}) == feed_result::blocked));
    reader.read_pushed(r, 1);
    BOOST_TEST(host.take_resume(writer.id));
    BOOST_TEST((writer.feed(post_frame{w, payload{list}}) == feed_result::next));
    BOOST_TEST(host.outbox(writer.id).empty()); // its result still held
    BOOST_TEST(writer.info(w).message_count == 1u);
}

BOOST_AUTO_TEST_CASE(a_write_frame_with_a_lying_length_closes_only_its_connection)
{
    core host(limits());
    client reader(host), writer(host), liar(host);
    const auto r = reader.create("q").handle;
    const auto w = writer.open("q").handle;
    const auto l = liar.open("q").handle;
    byte_buffer list;
    append_record(list, byte_span(reinterpret_cast<const std::uint8_t*>("fine"), 4));
    append_record(list, byte_span(reinterpret_cast<const std::uint8_t*>("cut"), 3));
    list.pop_back(); // the last record is one byte short of its length
    BOOST_TEST((liar.feed(write_frame{l, payload{list}}) == feed_result::close));
    BOOST_TEST(liar.last<fatal_frame>().error == 13u);
    BOOST_TEST(writer.info(w).message_count == 0u); // not even "fine" went in
    client empty(host);
    const auto e = empty.open("q").handle;
    BOOST_TEST((empty.feed(write_frame{e, payload{}}) == feed_result::close)); // not one record
    writer.write(w, "still here");
    reader.feed(read_report_frame{r, 0, 16});
    BOOST_TEST((records_of(reader.take().at(0)) == std::vector<std::string>{"still here"}));

    // To a full slot the same lie is held back first (the frame's size says
    // it does not fit), and closes its connection when it goes on.
    client full_reader(host), late_liar(host);
    const auto fr = full_reader.create("full", 0, 20).handle;
    const auto ll = late_liar.open("full").handle;
    writer.write(writer.open("full").handle, std::string(16, 'x'));
    BOOST_TEST((late_liar.feed(write_frame{ll, payload{list}}) == feed_result::blocked));
    full_reader.read_pushed(fr, 1);
    BOOST_TEST(host.take_resume(late_liar.id));
    BOOST_TEST((late_liar.feed(write_frame{ll, payload{list}}) == feed_result::close));
    BOOST_TEST(late_liar.last<fatal_frame>().error == 13u);
    BOOST_TEST(full_reader.info(fr).message_count == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_slot_holds_a_write_frame_back_whole)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q", 0, 30).handle;
    const auto w = writer.open("q").handle;
    writer.write(w, std::string(10, 'a'));
    // 10 queued + 3 x 10 is over the budget: none of the three goes in yet.
    BOOST_TEST((writer.write_many(w, {std::string(10, 'b'), std::string(10, 'c'),
                                      std::string(10, 'd')}) == feed_result::blocked));
    BOOST_TEST(writer.info(w).message_count == 1u);
    reader.read_pushed(r, 1); // read: room for the frame now
    BOOST_TEST(host.take_resume(writer.id));
    BOOST_TEST((writer.write_many(w, {std::string(10, 'b'), std::string(10, 'c'),
                                      std::string(10, 'd')}) == feed_result::next));
    BOOST_TEST(writer.info(w).message_count == 3u);
    // An empty slot takes a frame larger than its budget, whole.
    reader.read_pushed(r, 3);
    BOOST_TEST(
        (writer.write_many(w, {std::string(20, 'e'), std::string(20, 'f')}) == feed_result::next));
    BOOST_TEST(writer.info(w).message_count == 2u);
    BOOST_TEST(writer.info(w).dropped == 0u);
}

BOOST_AUTO_TEST_CASE(direction_and_size_rules)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q", 10).handle;
    const auto w = writer.open("q").handle;

    reader.write(r, "mine");
    BOOST_TEST(first_ack_error(reader) == 5u); // the creator does not write through its handle
    const auto own = reader.open("q").handle;
    reader.write(own, "mine");
    BOOST_TEST(first_ack_error(reader) == 5u); // nor to its own slot at all

    writer.write(w, "eleven byte");
    BOOST_TEST(first_ack_error(writer) == 4336u);
    BOOST_TEST(writer.info(w).message_count == 0u); // nothing was queued

    writer.feed(set_timeout_frame{1, w, 5});
    BOOST_TEST(writer.last<result_frame>().error == 5u);
    writer.feed(poll_frame{2, w});
    BOOST_TEST(writer.last<result_frame>().error == 87u);

    const auto star = writer.open(R"(\\*\mailslot\q)").handle;
    writer.write(star, std::string(425, 'x'));
    BOOST_TEST(first_ack_error(writer) == 53u);
    writer.write(star, "short");
    BOOST_TEST(writer.acks().front().delivered == 1u);
}

BOOST_AUTO_TEST_CASE(pushes_within_the_window_and_info_stays_exact)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q").handle;
    const auto w = writer.open("q").handle;
    for (auto s : {"1", "22", "333"})
        writer.write(w, s);
    BOOST_TEST(reader.take().empty()); // no window yet: nothing pushed
    reader.feed(read_report_frame{r, 0, 2});
    auto frames = reader.take();
    BOOST_TEST_REQUIRE(frames.size() == 1u); // two records, one frame
    BOOST_TEST((records_of(frames[0]) == std::vector<std::string>{"1", "22"}));
    auto info = writer.info(w);
    BOOST_TEST(info.message_count == 3u); // pushed is not read
    BOOST_TEST(info.next_size == 1u);
    reader.feed(read_report_frame{r, 2, 2});
    BOOST_TEST(reader.take().size() == 1u); // the third follows the returned credit
    info = writer.info(w);
    BOOST_TEST(info.message_count == 1u);
    BOOST_TEST(info.next_size == 3u);
    BOOST_TEST(info.queued_bytes == 3u);

    BOOST_TEST((reader.feed(read_report_frame{r, 5, 2}) == feed_result::close)); // lying count
}

BOOST_AUTO_TEST_CASE(full_slot_holds_writers_back_until_it_drains)
{
    core host(limits());
    client reader(host), writer(host), bystander(host);
    const auto r = reader.create("q", 0, 10).handle;
    bystander.create("other");
    const auto w = writer.open("q").handle;
    const auto w2 = writer.open("other").handle;
    BOOST_TEST((writer.write(w, "12345678") == feed_result::next));
    BOOST_TEST((writer.write(w, "123") == feed_result::blocked));
    BOOST_TEST(host.take_touched().size() >= 1u);
    BOOST_TEST(!host.take_resume(writer.id));
    // Other slots are not held back by a full one.
    client other_writer(host);
    other_writer.write(other_writer.open("other").handle, "fine");
    BOOST_TEST(other_writer.acks().front().error == 0u);
    (void)w2;
    // The reader reads: the writer may go on.
    reader.feed(read_report_frame{r, 0, 8});
    reader.feed(read_report_frame{r, 1, 8});
    host.take_touched();
    BOOST_TEST(host.take_resume(writer.id));
    BOOST_TEST((writer.write(w, "123") == feed_result::next));
}

BOOST_AUTO_TEST_CASE(slot_dies_with_its_reader_and_writers_find_the_new_one)
{
    core host(limits());
    auto reader = std::make_unique<client>(host);
    client writer(host);
    reader->create("plugin/inbox");
    const auto w = writer.open("plugin/inbox").handle;
    writer.write(w, "x");
    BOOST_TEST(writer.acks().front().delivered == 1u);
    host.disconnect(reader->id);
    reader.reset();
    BOOST_TEST(host.names().size() == 0u); // destroyed at once, record discarded
    writer.write(w, "lost");
    BOOST_TEST(first_ack_error(writer) == 2u);
    BOOST_TEST(writer.info(w).error == 2u);

    client restarted(host);
    BOOST_TEST(restarted.create("PLUGIN/INBOX").error == 0u); // the name is free again
    writer.write(w, "again");
    BOOST_TEST(writer.acks().front().delivered == 1u);
    BOOST_TEST(writer.info(w).message_count == 1u);
}

BOOST_AUTO_TEST_CASE(duplicate_tokens_work_once_and_share_the_queue)
{
    core host(limits());
    client owner(host), child(host), thief(host);
    const auto r = owner.create("q").handle;
    owner.feed(duplicate_frame{9, r});
    const auto token = std::string(owner.last<result_frame>().text);
    BOOST_TEST(token.size() == 32u);
    child.feed(attach_frame{1, child.next_handle++, token});
    const auto dup = child.last<result_frame>();
    BOOST_TEST(dup.error == 0u);
    thief.feed(attach_frame{1, thief.next_handle++, token});
    BOOST_TEST(thief.last<result_frame>().error == 6u);

    // One timeout for the slot: every handle hears of a change.
    owner.feed(set_timeout_frame{3, r, 250});
    BOOST_TEST(child.last<timeout_changed_frame>().read_timeout == 250u);

    // The owner closes; the slot lives on in the child.
    owner.feed(close_frame{4, r});
    BOOST_TEST(owner.last<result_frame>().error == 0u);
    BOOST_TEST(host.names().size() == 1u);
    child.feed(close_frame{5, dup.handle});
    BOOST_TEST(host.names().size() == 0u);
}

BOOST_AUTO_TEST_CASE(duplicate_tokens_are_random_expire_and_are_bounded_per_connection)
{
    auto l = limits();
    l.token_lifetime = std::chrono::seconds(10);
    l.max_tokens = 3;
    core host(l);
    auto now = core::clock::now();
    host.set_clock([&] { return now; });
    client owner(host), child(host);
    const auto r = owner.create("q").handle;
    auto duplicate = [&] {
        owner.feed(duplicate_frame{9, r});
        const auto m = owner.last<result_frame>();
        return std::pair{m.error, std::string(m.text)};
    };
    auto attach = [&](const std::string& token) {
        child.feed(attach_frame{1, child.next_handle++, token});
        return child.last<result_frame>().error;
    };
    std::vector<std::string> tokens;
    for (int i = 0; i < 3; ++i)
        tokens.push_back(duplicate().second);
    BOOST_TEST(tokens[0] != tokens[1]);
    BOOST_TEST(tokens[0].find_first_not_of("0123456789abcdef") == std::string::npos);
    BOOST_TEST(duplicate().first == 4u); // a fourth unused one: too_many_open_files
    BOOST_TEST(attach(tokens[0]) == 0u); // using one makes room
    tokens.push_back(duplicate().second);
    BOOST_TEST(!tokens.back().empty());
    now += std::chrono::seconds(11);
    BOOST_TEST(attach(tokens[1]) == 6u); // expired: invalid_handle
    BOOST_TEST(duplicate().first == 0u); // the expired ones made room
}

BOOST_AUTO_TEST_CASE(a_slot_owner_is_the_kernels_pid_and_uid_not_the_hellos)
{
    core host(limits());
    client liar(host, false);
    host.disconnect(liar.id);
    liar.id = host.connect({4242, 0, 0, 0, {}, {}}); // what SO_PEERCRED said (root may create)
    hello_frame hello;
    hello.pid = 1; // a lie
    liar.feed(hello);
    (void)liar.take();
    BOOST_TEST(liar.create("mine").error == 0u);
    std::error_code ec;
    const auto owner = host.slots("", ec).at("slots").as_array().at(0).at("owner").as_object();
    BOOST_TEST(owner.at("pid").to_number<std::uint32_t>() == 4242u);
    BOOST_TEST(owner.at("uid").to_number<std::uint32_t>() == 0u);
    BOOST_TEST(owner.at("claimed_pid").to_number<std::uint32_t>() == 1u);
}

BOOST_AUTO_TEST_CASE(timeout_notices_to_a_peer_that_never_reads_are_coalesced)
{
    core host(limits());
    client owner(host), lurker(host);
    const auto r = owner.create("q").handle;
    owner.feed(duplicate_frame{2, r});
    const auto token = std::string(owner.last<result_frame>().text);
    lurker.feed(attach_frame{1, lurker.next_handle++, token});
    const auto dup = lurker.last<result_frame>().handle;
    for (std::uint32_t t = 0; t < 100'000; ++t) {
        owner.feed(set_timeout_frame{3, r, t});
        (void)owner.take();
    }
    BOOST_TEST(host.outbox(lurker.id).size() < 64u); // one notice is owed, not 100 000
    const auto frames = lurker.take();
    BOOST_REQUIRE(frames.size() == 1u);
    timeout_changed_frame m;
    BOOST_REQUIRE(decode(frames[0].body, m));
    BOOST_TEST(m.handle == dup);
    BOOST_TEST(m.read_timeout == 99'999u); // the slot's timeout as it is now
}

BOOST_AUTO_TEST_CASE(pushes_to_a_connection_pause_while_its_output_is_over_the_bound)
{
    auto l = limits();
    l.max_outbox = 64 * 1024;
    core host(l);
    client reader(host), writer(host);
    // Eight slots of one connection, each with room to be pushed 1 MiB.
    std::vector<std::uint32_t> readers, writers;
    for (int i = 0; i < 8; ++i) {
        readers.push_back(reader.create("fan/" + std::to_string(i)).handle);
        reader.feed(read_report_frame{readers.back(), 0, 4096});
        writers.push_back(writer.open("fan/" + std::to_string(i)).handle);
    }
    const std::string record(1000, 'x');
    for (int n = 0; n < 100; ++n)
        for (auto w : writers)
            writer.write(w, record);
    // 800 KB were written; the connection is given only about its bound.
    const auto held = host.outbox(reader.id).size();
    BOOST_TEST(held >= l.max_outbox);
    BOOST_TEST(held < l.max_outbox + 2 * 1024);
    // Once its output is taken, pushing goes on, a bound's worth at a time.
    std::size_t records = 0, rounds = 0;
    for (auto frames = reader.take(); !frames.empty(); frames = reader.take(), ++rounds)
        for (const auto& f : frames)
            if (f.type == frame_type::records)
                records += records_of(f).size();
    BOOST_TEST(records == 800u);
    BOOST_TEST(rounds >= 10u);
}

BOOST_AUTO_TEST_CASE(caps_on_slots_subscriptions_and_budgets_per_connection_and_in_all)
{
    auto l = limits();
    l.max_slots = 3;
    l.max_connection_budget = 2000;
    l.max_total_budget = 2550;
    l.max_connection_subscriptions = 2;
    l.max_total_subscriptions = 3;
    core host(l);
    client a(host), b(host);
    // Budgets: 2000 for a connection, 2550 in all.
    const auto a1 = a.create("a1", 0, 1500).handle;
    BOOST_TEST(a.create("a2", 0, 600).error == 1816u);  // a's 2000
    BOOST_TEST(b.create("b1", 0, 1100).error == 1816u); // 2550 in all
    const auto b1 = b.create("b1", 0, 1000).handle;
    BOOST_TEST(b1 != 0u);
    // Slots: 3 in all.
    const auto a2 = a.create("a2", 0, 1).handle;
    BOOST_TEST(b.create("b2", 0, 1).error == 4u);
    // Subscriptions: 2 for a connection, 3 in all.
    auto subscribe = [](client& c, std::uint32_t h, std::string_view p) {
        c.feed(subscribe_frame{c.next_request++, h, p});
        return c.last<result_frame>().error;
    };
    BOOST_TEST(subscribe(a, a1, "x/1") == 0u);
    BOOST_TEST(subscribe(a, a2, "x/2") == 0u);
    BOOST_TEST(subscribe(a, a1, "x/3") == 4u); // a's 2
    BOOST_TEST(subscribe(b, b1, "x/4") == 0u);
    BOOST_TEST(subscribe(b, b1, "x/5") == 4u); // 3 in all
    // What goes is given back: an unsubscribe, a closed slot.
    a.feed(unsubscribe_frame{a.next_request++, a2, "x/2"});
    BOOST_TEST(a.last<result_frame>().error == 0u);
    BOOST_TEST(subscribe(b, b1, "x/5") == 0u);
    a.feed(close_frame{a.next_request++, a1});
    (void)a.take();
    BOOST_TEST(subscribe(a, a2, "x/6") == 0u);      // x/1 went with a1
    BOOST_TEST(b.create("b2", 0, 900).error == 0u); // and so did a1's budget
    BOOST_TEST(a.create("a3", 0, 1).error == 4u);   // 3 slots again
}

BOOST_AUTO_TEST_CASE(admin_answers_are_valid_json_and_listings_come_in_pages)
{
    auto l = limits();
    l.max_record_size = 1000; // frames of 64 KiB: a listing of 1000 slots takes pages
    core host(l);
    host.set_admin_handler(
        [&](session_id, std::string_view, std::string_view argument, std::error_code& ec) {
            return boost::json::serialize(host.slots(argument, ec));
        });
    client odd(host, false);
    odd.feed(hello_frame{protocol_magic,
                         protocol_version,
                         protocol_version,
                         0,
                         0,
                         "\xff\xfe name \xc3",
                         {}}); // not UTF-8
    (void)odd.take();
    // Enough slots that no one frame holds the listing (a frame is at least 64 KiB).
    const std::string padding(200, 'p');
    for (int i = 0; i < 1000; ++i)
        BOOST_REQUIRE(odd.create("many/" + padding + std::to_string(i), 0, 1).error == 0u);
    std::set<std::string> seen;
    std::string after;
    int pages = 0;
    do {
        const auto ask = boost::json::serialize(boost::json::object{{"after", after}});
        odd.feed(admin_frame{
            1, "slots", {{reinterpret_cast<const std::uint8_t*>(ask.data()), ask.size()}}});
        const auto m = odd.last<admin_result_frame>();
        BOOST_REQUIRE(m.error == 0u);
        BOOST_REQUIRE(m.json.bytes.size() < host.limits().max_frame_size());
        boost::system::error_code ec;
        const auto page =
            boost::json::parse(std::string_view(reinterpret_cast<const char*>(m.json.bytes.data()),
                                                m.json.bytes.size()),
                               ec);
        BOOST_REQUIRE(!ec); // valid JSON, though the client's name was not valid text
        for (const auto& s : page.at("slots").as_array()) {
            BOOST_TEST(seen.insert(std::string(s.at("path").as_string())).second);
            BOOST_TEST(s.at("owner").at("client").as_string() ==
                       "\xef\xbf\xbd\xef\xbf\xbd name \xef\xbf\xbd");
        }
        const auto& next = page.at("next");
        after = next.is_string() ? std::string(next.as_string()) : "";
        ++pages;
    } while (!after.empty());
    BOOST_TEST(seen.size() == 1000u);
    BOOST_TEST(pages > 1);
}

BOOST_AUTO_TEST_CASE(fan_out_one_copy_per_slot_and_exact_counts)
{
    core host(limits());
    client named(host), all(host), level(host), writer(host);
    const auto n = named.create("events/orders").handle;
    const auto a = all.create("audit/all").handle;
    const auto l = level.create("audit/level").handle;
    all.feed(subscribe_frame{1, a, "events/**"});
    BOOST_TEST(all.last<result_frame>().error == 0u);
    all.feed(subscribe_frame{2, a, "events/orders"}); // overlapping: still one copy
    BOOST_TEST(all.last<result_frame>().error == 0u);
    all.feed(subscribe_frame{3, a, "EVENTS/**"}); // the same pattern in another case
    BOOST_TEST(all.last<result_frame>().error == 183u);
    level.feed(subscribe_frame{1, l, "events/*"});
    named.feed(subscribe_frame{1, n, "events/orders"}); // its own name too: still one copy

    const auto w = writer.open("events/orders").handle;
    writer.write(w, "o1");
    auto runs = writer.acks();
    BOOST_TEST_REQUIRE(runs.size() == 1u);
    BOOST_TEST(runs[0].error == 0u);
    BOOST_TEST(runs[0].delivered == 3u);
    BOOST_TEST(all.info(a).message_count == 1u);

    // A name with subscribers but no slot of its own opens and delivers.
    const auto deep = writer.open("events/orders/eu").handle;
    writer.write(deep, "o2");
    BOOST_TEST(writer.acks().front().delivered == 1u); // only `events\**`
    BOOST_TEST(writer.open("unrelated/name").error == 2u);

    // Unsubscribing narrows the fan-out; unknown patterns are refused.
    level.feed(unsubscribe_frame{2, l, "events/*"});
    BOOST_TEST(level.last<result_frame>().error == 0u);
    level.feed(unsubscribe_frame{3, l, "events/*"});
    BOOST_TEST(level.last<result_frame>().error == 2u);
    writer.write(w, "o3");
    BOOST_TEST(writer.acks().front().delivered == 2u);

    // A slot's subscriptions die with it.
    host.disconnect(all.id);
    writer.write(deep, "o4");
    BOOST_TEST(first_ack_error(writer) == 2u);
}

BOOST_AUTO_TEST_CASE(records_either_side_of_the_copy_limit_arrive_whole_and_come_back_unread)
{
    // Up to record_queue::inline_limit a record is copied into each queue,
    // past it one copy is shared: either way every reader gets the bytes, in
    // order, and a reader that closes unread hands its pushed records on.
    core host(limits());
    client owner(host), subscriber(host), writer(host), heir(host);
    const auto o = owner.create("events/x").handle;
    const auto s = subscriber.create("audit/x").handle;
    subscriber.feed(subscribe_frame{1, s, "events/**"});
    BOOST_TEST(subscriber.last<result_frame>().error == 0u);
    owner.feed(read_report_frame{o, 0, 16});
    subscriber.feed(read_report_frame{s, 0, 16});

    std::vector<std::string> sent;
    for (std::size_t size : {0, 1, 511, 512, 513, 5000})
        sent.push_back(std::string(size, static_cast<char>('a' + sent.size())));
    const auto w = writer.open("events/x").handle;
    writer.write_many(w, {sent[0], sent[1], sent[2], sent[3], sent[4], sent[5]});
    BOOST_TEST(writer.acks().front().delivered == 2u);
    auto received = [](client& c) {
        std::vector<std::string> all;
        for (auto& f : c.take())
            if (f.type == frame_type::records)
                for (auto& r : records_of(f))
                    all.push_back(std::move(r));
        return all;
    };
    BOOST_TEST(received(subscriber) == sent);
    BOOST_TEST(received(owner) == sent); // pushed, not yet reported read

    // The owner hands the slot on and closes without reading: what was
    // pushed to it goes to the heir, in order, shared records included.
    owner.feed(duplicate_frame{2, o});
    const auto token = std::string(owner.last<result_frame>().text);
    heir.feed(attach_frame{1, heir.next_handle++, token});
    const auto h = heir.last<result_frame>().handle;
    owner.feed(close_frame{3, o});
    BOOST_TEST(heir.info(h).message_count == 6u);
    heir.feed(read_report_frame{h, 0, 16});
    BOOST_TEST(received(heir) == sent);
}

BOOST_AUTO_TEST_CASE(drop_newest_counts_and_tells_the_reader)
{
    core host(limits());
    client reader(host), writer(host);
    // Each record costs 46 of the budget (10 bytes, its length, the host's
    // entry): three fit in 130, as the third comes in with its 14 bytes.
    const auto r = reader.create("q", 0, 130, overflow_policy::drop_newest).handle;
    const auto w = writer.open("q").handle;
    for (int i = 0; i < 5; ++i)
        writer.write(w, "0123456789");
    std::vector<std::uint32_t> delivered;
    for (const auto& run : writer.acks())
        for (std::uint32_t i = 0; i < run.count; ++i)
            delivered.push_back(run.delivered);
    // Never held back: the last two are dropped, counted, and say so.
    BOOST_TEST(delivered == (std::vector<std::uint32_t>{1, 1, 1, 0, 0}));
    auto info = writer.info(w);
    BOOST_TEST(info.message_count == 3u);
    BOOST_TEST(info.dropped == 2u);
    // Read everything: the next record written carries the gap of 2.
    reader.read_pushed(r, 3);
    writer.write(w, "after");
    auto frames = reader.take();
    BOOST_TEST_REQUIRE(frames.size() == 2u);
    BOOST_TEST((frames[0].type == frame_type::gap));
    gap_frame g;
    BOOST_TEST(decode(frames[0].body, g));
    BOOST_TEST(g.missed == 2u);
    BOOST_TEST((frames[1].type == frame_type::records));
}

BOOST_AUTO_TEST_CASE(a_writer_tells_of_records_lost_upstream_and_readers_hear_it_in_place)
{
    core host(limits());
    client reader(host), writer(host), stranger(host);
    const auto r = reader.create("q").handle;
    const auto w = writer.open("q").handle;
    writer.write(w, "first");
    BOOST_TEST((writer.feed(lost_frame{w, 3}) == feed_result::next)); // no answer
    writer.write(w, "after three lost");
    BOOST_TEST(writer.info(w).dropped == 3u);
    reader.feed(read_report_frame{r, 0, 16});
    std::vector<std::string> got;
    for (const auto& f : reader.take()) {
        if (f.type == frame_type::gap) {
            gap_frame g;
            BOOST_REQUIRE(decode(f.body, g));
            BOOST_TEST(g.missed == 3u);
            BOOST_TEST(got.size() == 1u); // between the two, where they were lost
        }
        if (f.type == frame_type::records)
            for (auto& rec : records_of(f))
                got.push_back(rec);
    }
    BOOST_TEST(got.size() == 2u);
    // A handle it does not have (closed meanwhile): nothing to tell; a reader's: an error.
    BOOST_TEST((stranger.feed(lost_frame{99, 1}) == feed_result::next));
    BOOST_TEST((reader.feed(lost_frame{r, 1}) == feed_result::close));
}

BOOST_AUTO_TEST_CASE(drop_oldest_keeps_the_newest_and_tells_the_reader)
{
    core host(limits());
    client reader(host), writer(host);
    const auto r = reader.create("q", 0, 130, overflow_policy::drop_oldest).handle;
    const auto w = writer.open("q").handle;
    for (char c = 'a'; c <= 'e'; ++c)
        writer.write(w, std::string(10, c));
    for (const auto& run : writer.acks())
        BOOST_TEST(run.delivered == 1u); // all delivered: the oldest make way
    BOOST_TEST(writer.info(w).dropped == 2u);
    reader.feed(read_report_frame{r, 0, 16});
    auto frames = reader.take();
    BOOST_TEST_REQUIRE(frames.size() == 2u); // the gap, then c, d, e
    gap_frame g;
    BOOST_TEST(decode(frames[0].body, g));
    BOOST_TEST(g.missed == 2u);
    const auto records = records_of(frames[1]);
    BOOST_TEST_REQUIRE(records.size() == 3u);
    BOOST_TEST(records[0] == std::string(10, 'c'));
}

BOOST_AUTO_TEST_CASE(a_writers_own_subscription_never_holds_it_back)
{
    core host(limits());
    client both(host), other(host);
    const auto mine = both.create("mine", 0, 10).handle;
    both.feed(subscribe_frame{1, mine, "chat/*"});
    other.create("chat/room");
    const auto w = both.open("chat/room").handle;
    BOOST_TEST((both.write(w, "0123456789") == feed_result::next));
    BOOST_TEST((both.write(w, "0123456789") == feed_result::next)); // own slot full: dropped
    auto runs = both.acks();
    BOOST_TEST(runs.back().delivered == 1u);
    BOOST_TEST(both.info(mine).dropped == 1u);
}

BOOST_AUTO_TEST_CASE(a_subscriber_with_a_smaller_maximum_misses_only_that_record)
{
    core host(limits());
    client small(host), named(host), writer(host);
    const auto s = small.create("small", 4).handle;
    small.feed(subscribe_frame{1, s, "big/*"});
    named.create("big/one");
    writer.write(writer.open("big/one").handle, "too long for small");
    BOOST_TEST(writer.acks().front().delivered == 1u);
    BOOST_TEST(small.info(s).dropped == 1u);
}

BOOST_AUTO_TEST_CASE(declared_topic_types_refuse_other_records_one_by_one)
{
    auto l = limits();
    l.declared_types.push_back(
        {topic_pattern::parse("events/orders/**"), {"orders.created", "orders.paid"}});
    l.declared_types.push_back({topic_pattern::parse("events/*/eu"), {"orders.created"}});
    core host(l);
    client reader(host), writer(host);
    reader.create("events/orders/eu");
    reader.create("events/orders/us");
    const auto eu = writer.open("events/orders/eu").handle;
    const auto us = writer.open("events/orders/us").handle;
    auto result = [&](std::uint32_t h, std::string_view record) {
        writer.write(h, record);
        return writer.acks().front().error;
    };
    BOOST_TEST(result(us, R"({"type":"orders.paid","specversion":"1.0"})") == 0u);
    BOOST_TEST(result(eu, R"({"type":"orders.paid"})") == 13u); // the `*\eu` rule refuses it
    BOOST_TEST(result(eu, R"({"type":"orders.created"})") == 0u);
    BOOST_TEST(result(us, "not json at all") == 13u);
    BOOST_TEST(result(us, R"({"type":42})") == 13u);
    BOOST_TEST(result(us, R"({"type":"orders.created"})") == 0u); // the writer goes on
}

BOOST_AUTO_TEST_CASE(clients_number_handles_once_each)
{
    core host(limits());
    client c(host);
    c.create("q");
    c.feed(create_frame{9, 1, 0, 0, 0, 0, "other"}); // handle 1 is taken
    BOOST_TEST(c.last<result_frame>().error == 87u);
    c.feed(open_frame{10, 0, 0, "q"}); // 0 is no handle
    BOOST_TEST(c.last<result_frame>().error == 87u);
    c.feed(open_frame{11, 77, 0, "q"});
    auto r = c.last<result_frame>();
    BOOST_TEST(r.error == 0u);
    BOOST_TEST(r.handle == 77u);
}

BOOST_AUTO_TEST_CASE(rebinding_writers_and_heartbeats)
{
    core host(limits());
    client c(host);
    // A reconnecting client rebinds its writer before the receiver is back.
    c.feed(open_frame{1, 5, open_rebind, "not/yet"});
    BOOST_TEST(c.last<result_frame>().error == 0u);
    c.write(5, "early");
    BOOST_TEST(first_ack_error(c) == 2u);
    client receiver(host);
    receiver.create("not/yet");
    c.write(5, "now");
    BOOST_TEST(c.acks().front().delivered == 1u);
    c.feed(ping_frame{42});
    BOOST_TEST(c.last<pong_frame>().nonce == 42u);
}

BOOST_AUTO_TEST_CASE(a_plugin_token_names_the_connection_and_the_slots_it_creates)
{
    core host(limits());
    host.add_plugin_token("t0ken", "journal", nullptr);
    host.bind_plugin_token("t0ken", 4242);
    client plugin(host, {4242, 1000, 1000, 4242, {}, {}}, false);
    plugin.feed(hello_frame{protocol_magic, protocol_version, protocol_version, 42, 0,
                            "slotbus-journal", "t0ken"});
    BOOST_TEST(plugin.last<welcome_frame>().plugin == "journal");
    BOOST_TEST(plugin.create("plugins/journal/inbox").error == 0u);

    std::error_code ec;
    const auto listing = host.slots("plugins", ec);
    BOOST_REQUIRE(!ec);
    const auto& owner = listing.at("slots").as_array().at(0).at("owner");
    BOOST_TEST(owner.at("plugin").as_string() == "journal");
    BOOST_TEST(owner.at("client").as_string() == "slotbus-journal");
    BOOST_TEST(owner.at("claimed_pid").to_number<int>() == 42); // the hello's word: a claim

    // A revoked (or made-up) token is refused before anything else happens.
    host.revoke_plugin_token("t0ken");
    client late(host, false);
    BOOST_TEST((late.feed(hello_frame{protocol_magic, protocol_version, protocol_version, 0, 0, "x",
                                      "t0ken"}) == feed_result::close));
    const auto refused = late.last<fatal_frame>();
    BOOST_TEST(refused.error == 6u);
    BOOST_TEST(refused.message.find("unknown plugin token") != std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(admin_frames_go_to_the_handler_and_counters_count)
{
    core host(limits());
    client asker(host);
    // No handler: every command is unknown.
    asker.feed(admin_frame{9, "stats", {}});
    BOOST_TEST(asker.last<admin_result_frame>().error == 1u);

    host.set_admin_handler([&](session_id, std::string_view command, std::string_view argument,
                               std::error_code& ec) -> std::string {
        if (command != "echo") {
            ec = error::invalid_function;
            return {};
        }
        return std::string(argument);
    });
    const std::string arg = R"({"x":1})";
    asker.feed(
        admin_frame{10, "echo", {{reinterpret_cast<const std::uint8_t*>(arg.data()), arg.size()}}});
    const auto answer = asker.last<admin_result_frame>();
    BOOST_TEST(answer.request_id == 10u);
    BOOST_TEST(answer.error == 0u);
    BOOST_TEST(std::string(answer.json.bytes.begin(), answer.json.bytes.end()) == arg);

    client reader(host);
    const auto slot = reader.create("c/slot").handle;
    reader.feed(subscribe_frame{reader.next_request++, slot, "t/**"});
    const auto to_slot = asker.open("c/slot").handle;
    const auto to_topic = asker.open("t/x").handle;
    asker.write(to_slot, "abc");
    asker.write(to_topic, "de");
    asker.write(asker.open("c/other-name").handle, "x"); // file_not_found at open: no handle
    const auto stats = host.stats();
    BOOST_TEST(stats.at("slot_count").to_number<int>() == 1);
    BOOST_TEST(stats.at("writes").to_number<int>() == 3);
    BOOST_TEST(stats.at("write_errors").to_number<int>() == 1);
    BOOST_TEST(stats.at("deliveries").to_number<int>() == 2);
    const auto& traffic = stats.at("slots").as_array().at(0);
    BOOST_TEST(traffic.at("records_in").to_number<int>() == 2);
    BOOST_TEST(traffic.at("bytes_in").to_number<int>() == 5);
    BOOST_TEST(traffic.at("depth").to_number<int>() == 2);
}

BOOST_AUTO_TEST_CASE(an_admin_answer_larger_than_a_frame_is_refused_not_sent)
{
    auto small = limits();
    small.max_record_size = 1000;
    core host(small);
    host.set_admin_handler([](session_id, std::string_view, std::string_view, std::error_code&) {
        return std::string(70'000, ' '); // over the frame: 64 KiB at least, whatever the record
    });
    client asker(host);
    asker.feed(admin_frame{1, "slots", {}});
    const auto answer = asker.last<admin_result_frame>();
    BOOST_TEST(answer.error == 4336u);
    BOOST_TEST(answer.json.bytes.size() < 1000u);
}

BOOST_AUTO_TEST_CASE(a_handle_number_reused_after_close_writes_to_its_new_name)
{
    core host(limits());
    client reader(host);
    const auto x = reader.create("reuse/x").handle;
    const auto y = reader.create("reuse/y").handle;
    client writer(host);
    writer.feed(open_frame{1, 50, 0, "reuse/x"});
    BOOST_TEST(writer.last<result_frame>().error == 0u);
    writer.write(50, "to x");
    writer.feed(close_frame{2, 50});
    writer.feed(open_frame{3, 50, 0, "reuse/y"});
    BOOST_TEST(writer.last<result_frame>().error == 0u);
    writer.write(50, "to y");
    BOOST_TEST(reader.info(x).message_count == 1u);
    BOOST_TEST(reader.info(y).message_count == 1u);
    writer.feed(close_frame{4, 50});
    (void)writer.take();
    BOOST_TEST((writer.write(50, "nowhere") == feed_result::next));
    BOOST_TEST(first_ack_error(writer) == 6u); // invalid_handle: the cached entry is gone
}

// ---- who may do what ------------------------------------------------------------------------

namespace {

constexpr std::uint32_t stranger = 4321; // a uid neither the host's nor root

std::shared_ptr<const policy> rules_of(std::string_view text)
{
    std::string why;
    auto p = policy::parse(text, ::geteuid(), why);
    BOOST_REQUIRE_MESSAGE(p, why);
    return std::make_shared<const policy>(std::move(*p));
}

std::uint32_t subscribe(client& c, std::uint32_t handle, std::string_view pattern)
{
    c.feed(subscribe_frame{c.next_request++, handle, pattern});
    return c.last<result_frame>().error;
}

} // namespace

BOOST_AUTO_TEST_CASE(by_default_another_uid_may_do_nothing_and_each_refusal_is_counted)
{
    core host(limits());
    client owner(host);
    BOOST_TEST(owner.create("events/x").error == 0u);
    client other(host, {77, stranger, stranger, 77, {}, {}});
    BOOST_TEST(other.create("mine").error == 5u);
    BOOST_TEST(other.open("events/x").error == 5u);
    BOOST_TEST(other.open("no/such/name").error == 5u); // refused before it is looked up
    other.feed(admin_frame{other.next_request++, "stop", {}});
    BOOST_TEST(other.last<admin_result_frame>().error == 5u);
    other.feed(admin_frame{other.next_request++, "slots", {}});
    BOOST_TEST(other.last<admin_result_frame>().error == 5u);
    // Refusals are per operation: the connection goes on.
    other.feed(ping_frame{7});
    BOOST_TEST(other.last<pong_frame>().nonce == 7u);

    const auto denied = host.stats().at("denied").as_object();
    const auto& of = denied.at("uid " + std::to_string(stranger)).as_object();
    BOOST_TEST(of.at("create").to_number<int>() == 1);
    BOOST_TEST(of.at("write").to_number<int>() == 2);
    BOOST_TEST(of.at("admin").to_number<int>() == 1);
    BOOST_TEST(of.at("list").to_number<int>() == 1);
}

BOOST_AUTO_TEST_CASE(a_policy_gives_rights_on_names_decided_when_the_handle_is_made)
{
    core host(limits());
    host.set_policy(rules_of(R"({"rules": [
        {"uid": 4321, "allow": ["create", "read"], "names": ["inbox/**"]},
        {"uid": 4321, "allow": ["write"], "names": ["events/**"]}]})"));
    client owner(host);
    const auto events = owner.create("events/orders").handle;
    client other(host, {77, stranger, stranger, 77, {}, {}});
    BOOST_TEST(other.create("events/mine").error == 5u);
    const auto inbox = other.create("inbox/a").handle;
    BOOST_TEST(inbox != 0u);
    BOOST_TEST(subscribe(other, inbox, "events/**") == 5u); // no read on events
    BOOST_TEST(subscribe(other, inbox, "inbox/b/*") == 0u);
    const auto writer = other.open("events/orders").handle;
    BOOST_TEST(writer != 0u);
    other.write(writer, "hello");
    BOOST_TEST(other.acks().front().delivered == 1u);
    owner.read_pushed(events, 0);
    BOOST_TEST(owner.info(events).message_count == 1u);
}

BOOST_AUTO_TEST_CASE(a_policy_reload_closes_what_it_no_longer_allows_and_tells_the_owner)
{
    core host(limits());
    const auto before = R"({"rules": [
        {"uid": 4321, "allow": ["create", "read", "write"], "names": ["shared/**"]}]})";
    host.set_policy(rules_of(before));
    client owner(host);
    const auto target = owner.create("shared/target").handle;
    client other(host, {77, stranger, stranger, 77, {}, {}});
    const auto mine = other.create("shared/mine").handle;
    BOOST_TEST(subscribe(other, mine, "shared/*") == 0u);
    const auto writer = other.open("shared/target").handle;

    // Writing stays; creating and reading go.
    const auto revoked = host.set_policy(
        rules_of(R"({"rules": [{"uid": 4321, "allow": ["write"], "names": ["shared/**"]}]})"));
    BOOST_TEST(revoked == 1u); // the created slot (its subscription goes with it)
    auto frames = other.take();
    BOOST_REQUIRE(frames.size() == 1u);
    revoked_frame told;
    BOOST_REQUIRE(frames[0].type == frame_type::revoked);
    BOOST_REQUIRE(decode(frames[0].body, told));
    BOOST_TEST(told.handle == mine);
    BOOST_TEST(told.error == 5u);
    BOOST_TEST(told.pattern.empty());
    std::error_code ec;
    BOOST_TEST(host.slots("shared/mine", ec).at("slots").as_array().empty()); // destroyed
    BOOST_TEST(other.info(mine).error == 5u);   // the number stays taken, denied
    other.feed(read_report_frame{mine, 0, 16}); // in flight when it went: ignored
    other.write(writer, "still allowed");
    BOOST_TEST(other.acks().front().delivered == 1u);

    // Now writing goes too: the writer is revoked, its writes fail with 5.
    host.set_policy(rules_of(R"({"rules": []})"));
    BOOST_TEST(other.last<revoked_frame>().handle == writer);
    other.write(writer, "no more");
    BOOST_TEST(other.acks().front().error == 5u);
    BOOST_TEST(owner.info(target).message_count == 1u); // what it wrote while allowed
    BOOST_TEST(other.create("shared/again").error == 5u);
}

BOOST_AUTO_TEST_CASE(a_reload_removes_a_subscription_it_no_longer_allows_and_names_it)
{
    core host(limits());
    host.set_policy(rules_of(R"({"rules": [
        {"uid": 4321, "allow": ["create"], "names": ["inbox"]},
        {"uid": 4321, "allow": ["read"], "names": ["events/**", "logs/**"]}]})"));
    client other(host, {77, stranger, stranger, 77, {}, {}});
    const auto inbox = other.create("inbox").handle;
    BOOST_TEST(subscribe(other, inbox, "events/**") == 0u);
    BOOST_TEST(subscribe(other, inbox, "logs/*") == 0u);
    host.set_policy(rules_of(R"({"rules": [
        {"uid": 4321, "allow": ["create"], "names": ["inbox"]},
        {"uid": 4321, "allow": ["read"], "names": ["logs/**"]}]})"));
    const auto told = other.last<revoked_frame>();
    BOOST_TEST(told.handle == inbox);
    BOOST_TEST(told.pattern == "events\\**");
    client writer(host);
    BOOST_TEST(writer.open("events/x").error == 2u); // no receiver left
    writer.write(writer.open("logs/x").handle, "kept");
    BOOST_TEST(writer.acks().front().delivered == 1u);
}

BOOST_AUTO_TEST_CASE(a_plugin_token_is_good_only_in_the_process_it_was_given_to)
{
    core host(limits());
    host.add_plugin_token("t0ken", "journal", nullptr);
    client before_bound(host, {500, 1000, 1000, 500, {}, {}}, false);
    BOOST_TEST((before_bound.feed(hello_frame{protocol_magic, protocol_version, protocol_version, 0,
                                              0, "x", "t0ken"}) == feed_result::close));
    host.bind_plugin_token("t0ken", 500);
    client copy(host, {501, 1000, 1000, 501, {}, {}}, false); // another process, same uid
    BOOST_TEST((copy.feed(hello_frame{protocol_magic, protocol_version, protocol_version, 0, 0, "x",
                                      "t0ken"}) == feed_result::close));
    const auto refused = copy.last<fatal_frame>();
    BOOST_TEST(refused.error == 5u);
    BOOST_TEST(refused.message.find("a copied token is refused") != std::string_view::npos);
    client child(host, {502, 1000, 1000, 500, {}, {}}, false); // in the plugin's process group
    child.feed(hello_frame{protocol_magic, protocol_version, protocol_version, 0, 0, "x", "t0ken"});
    BOOST_TEST(child.last<welcome_frame>().plugin == "journal");
    client itself(host, {500, 1000, 1000, 500, {}, {}}, false); // a second connection of it
    itself.feed(
        hello_frame{protocol_magic, protocol_version, protocol_version, 0, 0, "x", "t0ken"});
    BOOST_TEST(itself.last<welcome_frame>().plugin == "journal");
}

BOOST_AUTO_TEST_CASE(a_plugin_may_do_what_its_manifest_says_and_is_refused_the_rest)
{
    core host(limits());
    auto permissions = std::make_shared<grant_list>();
    permissions->push_back(
        {static_cast<rights>(right::write), {topic_pattern::parse("events/**")}});
    host.add_plugin_token("t0ken", "metrics", permissions);
    host.bind_plugin_token("t0ken", 600);
    client owner(host);
    owner.create("events/x");
    owner.create("other/x");
    client plugin(host, {600, ::geteuid(), 0, 600, {}, {}}, false);
    plugin.feed(
        hello_frame{protocol_magic, protocol_version, protocol_version, 0, 0, "m", "t0ken"});
    BOOST_TEST(plugin.last<welcome_frame>().plugin == "metrics");
    BOOST_TEST(plugin.open("events/x").error == 0u);
    BOOST_TEST(plugin.open("other/x").error == 5u); // beyond the manifest: that operation only
    BOOST_TEST(plugin.create("events/y").error == 5u);
    const auto own = plugin.create("plugins/metrics/inbox").handle; // its own subtree
    BOOST_TEST(own != 0u);
    BOOST_TEST(subscribe(plugin, own, "events/**") == 5u);
    plugin.feed(admin_frame{plugin.next_request++, "stats", {}});
    BOOST_TEST(plugin.last<admin_result_frame>().error == 5u);
    BOOST_TEST(host.stats().at("denied").at("plugin metrics").at("write").to_number<int>() == 1);
    // Nobody else may take its name first.
    BOOST_TEST(owner.create("plugins/metrics/other").error == 5u);
}

// ---- a sender the bus vouches for ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(each_pushed_record_carries_its_writers_identity_and_the_name_written_to)
{
    core host(limits());
    auto may_write = std::make_shared<grant_list>();
    may_write->push_back({static_cast<rights>(right::write), {topic_pattern::parse("events/**")}});
    host.add_plugin_token("t0ken", "orders", may_write);
    host.bind_plugin_token("t0ken", 300);
    client inbox(host);
    const auto r = inbox.create("inbox").handle;
    inbox.feed(subscribe_frame{inbox.next_request++, r, "events/**"});
    inbox.take();
    client plugin(host, {300, 1000, 1000, 300, {}, {}}, false);
    plugin.feed(
        hello_frame{protocol_magic, protocol_version, protocol_version, 1, 0, "x", "t0ken"});
    plugin.take();
    client plain(host, {301, 0, 0, 301, {}, {}});
    const auto from_plugin = plugin.open("events/Orders/EU").handle;
    const auto from_plain = plain.open("events/logs").handle;
    plugin.write_many(from_plugin, {"a", "b"});
    plain.write(from_plain, "c");
    plugin.write(from_plugin, "d");
    inbox.feed(read_report_frame{r, 0, 16});
    std::vector<std::pair<std::uint32_t, std::vector<std::string>>> runs;
    for (auto& f : inbox.take())
        if (f.type == frame_type::records) {
            records_frame m;
            BOOST_REQUIRE(decode(f.body, m));
            runs.emplace_back(m.origin, records_of(f));
        }
    // Runs split where the sender changes; each sender announced once.
    BOOST_TEST_REQUIRE(runs.size() == 3u);
    BOOST_TEST(runs[0].second == (std::vector<std::string>{"a", "b"}));
    BOOST_TEST(runs[1].second == (std::vector<std::string>{"c"}));
    BOOST_TEST(runs[2].first == runs[0].first);
    BOOST_TEST(inbox.origins.size() == 2u);
    const auto& p = inbox.origins.at(runs[0].first);
    BOOST_TEST(p.plugin == "orders");
    BOOST_TEST(p.pid == 300u); // the kernel's, not the hello's 1
    BOOST_TEST(p.uid == 1000u);
    BOOST_TEST(p.name == "events\\Orders\\EU"); // as written, not the inbox's name
    const auto& q = inbox.origins.at(runs[1].first);
    BOOST_TEST(q.plugin.empty());
    BOOST_TEST(q.pid == 301u);
    BOOST_TEST(q.name == "events\\logs");
}

BOOST_AUTO_TEST_CASE(a_readers_table_of_origins_is_bounded_and_ids_are_never_reused)
{
    core host(limits());
    client inbox(host);
    const auto r = inbox.create("inbox", 0, 64u << 20).handle;
    inbox.feed(read_report_frame{r, 0, 64});
    inbox.take();
    client writer(host);
    std::uint32_t forgotten_below = 0;
    std::size_t records = 0;
    for (int i = 0; i < 4200; ++i) { // a writer that opens a handle per record
        const auto h = writer.open("inbox").handle;
        writer.write(h, "x");
        writer.feed(close_frame{writer.next_request++, h});
        for (auto& f : inbox.take()) {
            if (f.type == frame_type::origins_forgotten) {
                origins_forgotten_frame m;
                BOOST_REQUIRE(decode(f.body, m));
                forgotten_below = m.below;
            }
            records += f.type == frame_type::records;
        }
        inbox.feed(read_report_frame{r, 1, 64});
    }
    BOOST_TEST(records == 4200u);
    BOOST_TEST(forgotten_below == 4097u);      // the table started again once
    BOOST_TEST(inbox.origins.size() == 4200u); // each announced, none reused
}

BOOST_AUTO_TEST_CASE(a_duplicated_handle_hands_over_a_slot_not_a_right)
{
    core host(limits());
    host.set_policy(
        rules_of(R"({"rules": [{"uid": 4321, "allow": ["read"], "names": ["shared/**"]}]})"));
    client owner(host);
    const auto open_slot = owner.create("shared/q").handle;
    const auto closed_slot = owner.create("private/q").handle;
    const auto token_of = [&](std::uint32_t handle) {
        owner.feed(duplicate_frame{owner.next_request++, handle});
        return std::string(owner.last<result_frame>().text);
    };
    const auto open_token = token_of(open_slot), closed_token = token_of(closed_slot);
    client other(host, {77, stranger, stranger, 77, {}, {}});
    other.feed(attach_frame{other.next_request++, other.next_handle++, closed_token});
    BOOST_TEST(other.last<result_frame>().error == 5u);
    other.feed(attach_frame{other.next_request++, other.next_handle++, open_token});
    BOOST_TEST(other.last<result_frame>().error == 0u);
    // Taken away again on a reload: the attached reader is revoked; the owner's stays.
    host.set_policy(rules_of(R"({"rules": []})"));
    BOOST_TEST(other.last<revoked_frame>().error == 5u);
    BOOST_TEST(owner.info(open_slot).error == 0u);
}

BOOST_AUTO_TEST_CASE(a_reload_decides_a_subscription_for_its_maker_even_once_it_has_gone)
{
    core host(limits());
    const auto rules = R"({"rules": [
        {"uid": 4321, "allow": ["create"], "names": ["a/**"]},
        {"uid": 4321, "allow": ["read"], "names": ["a/**", "secret/**"]}]})";
    host.set_policy(rules_of(rules));
    auto maker = std::make_unique<client>(host, peer_info{77, stranger, stranger, 77, {}, {}});
    const auto in = maker->create("a/in").handle;
    BOOST_TEST(subscribe(*maker, in, "secret/**") == 0u);
    maker->feed(duplicate_frame{maker->next_request++, in});
    const auto token = std::string(maker->last<result_frame>().text);
    client heir(host); // root: may read a/in
    heir.feed(attach_frame{heir.next_request++, heir.next_handle++, token});
    BOOST_REQUIRE(heir.last<result_frame>().error == 0u);
    host.disconnect(maker->id); // the slot lives on through the heir's handle
    maker.reset();
    client writer(host);
    BOOST_TEST(writer.open("secret/x").error == 0u); // still subscribed
    host.set_policy(rules_of(R"({"rules": [
        {"uid": 4321, "allow": ["create", "read"], "names": ["a/**"]}]})"));
    BOOST_TEST(writer.open("secret/y").error == 2u); // the maker may not read it now: gone
    BOOST_TEST(heir.take().empty()); // nobody else was told: the maker is not there to hear
}
