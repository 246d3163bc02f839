#define BOOST_TEST_MODULE processes
// Real plugin processes against a real host: ordering across writers, a reader
// killed mid-stream, duplicated handles across processes, and peers that send
// garbage, lie, die mid-frame or flood.
#include "host_fixture.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <map>
#include <set>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

std::string token_of(const test::child& c)
{
    for (const auto& line : c.lines())
        if (line.rfind("token ", 0) == 0)
            return line.substr(6);
    return {};
}

// Polls until the name has no receiver, under a deadline.
bool gone(connection& bus, std::string_view name, std::chrono::milliseconds deadline = 5s)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        std::error_code ec;
        (void)client_slot::open(bus, name, ec);
        if (ec == error::file_not_found)
            return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

// A client that speaks raw bytes: what a buggy or hostile peer sends.
struct raw_client {
    asio::io_context io;
    asio::local::stream_protocol::socket socket{io};

    explicit raw_client(const std::string& path)
    {
        socket.connect(asio::local::stream_protocol::endpoint(path));
    }

    void send(byte_span bytes) { asio::write(socket, asio::buffer(bytes.data(), bytes.size())); }
    template <class M> void send_frame(const M& m)
    {
        byte_buffer b;
        encode(b, m);
        send(b);
    }

    // Reads frames until the host closes the connection; returns them.
    std::vector<std::pair<frame_type, byte_buffer>> read_until_closed()
    {
        byte_buffer all;
        boost::system::error_code ec;
        std::uint8_t chunk[4096];
        while (true) {
            auto n = socket.read_some(asio::buffer(chunk), ec);
            if (ec)
                break;
            all.insert(all.end(), chunk, chunk + n);
        }
        std::vector<std::pair<frame_type, byte_buffer>> frames;
        byte_span rest(all);
        while (true) {
            auto found = decode_frame(rest, 1u << 30);
            if (found.status != decoded_frame::ok)
                break;
            frames.emplace_back(found.frame.type,
                                byte_buffer(found.frame.body.begin(), found.frame.body.end()));
            rest = rest.subspan(found.size);
        }
        return frames;
    }
};

std::uint32_t fatal_error_of(raw_client& c)
{
    auto frames = c.read_until_closed();
    if (frames.empty() || frames.back().first != frame_type::fatal)
        return 0;
    fatal_frame m;
    return decode(frames.back().second, m) ? m.error : 0;
}

// A well-behaved client whose slot must come through every test unharmed.
struct bystander {
    connection bus;
    server_slot slot;
    connection writer_bus;
    client_slot writer;
    explicit bystander(const test::host& h)
    {
        bus.connect(h.socket());
        slot = server_slot::create(bus, "bystander/inbox", 0, 1000);
        writer_bus.connect(h.socket());
        writer = client_slot::open(writer_bus, "bystander/inbox");
        writer.write("before");
    }
    void check()
    {
        BOOST_TEST(writer.write("after") == 1u);
        BOOST_TEST(slot.read() == "before");
        BOOST_TEST(slot.read() == "after");
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(fifo_per_writer_across_two_writer_processes)
{
    test::host host;
    auto reader = test::peer(host, {"create", "orders", "--count", "4000"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto a = test::peer(host, {"write", "orders", "--count", "2000", "--prefix", "A"});
    auto b = test::peer(host, {"write", "orders", "--count", "2000", "--prefix", "B"});
    BOOST_TEST(a->wait_for_line("acked 2000 failed 0", 30s));
    BOOST_TEST(b->wait_for_line("acked 2000 failed 0", 30s));
    BOOST_TEST(reader->wait_exit(30s).value_or(-999) == 0);
    auto records = test::records_of(*reader);
    BOOST_TEST(records.size() == 4000u);
    std::map<char, long> next{{'A', 0}, {'B', 0}};
    for (const auto& r : records) {
        const long n = std::stol(r.substr(2));
        BOOST_TEST_REQUIRE(n == next[r[0]], "out of order: " << r);
        ++next[r[0]];
    }
}

BOOST_AUTO_TEST_CASE(reader_killed_slot_gone_name_free_again)
{
    test::host host;
    connection bus;
    bus.connect(host.socket());
    auto reader = test::peer(host, {"create", "plugin/inbox"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto writer = client_slot::open(bus, "plugin/inbox");
    for (int i = 0; i < 50; ++i)
        writer.write("queued " + std::to_string(i));
    reader->signal(SIGKILL);
    BOOST_TEST(reader->wait_exit(5s).has_value());
    BOOST_TEST(gone(bus, "plugin/inbox"));
    std::error_code ec;
    writer.write("nobody home", ec);
    BOOST_TEST(ec == error::file_not_found);
    // The plugin comes back: its old name, its old writers.
    auto restarted = test::peer(host, {"create", "Plugin/Inbox", "--count", "1"});
    BOOST_REQUIRE(restarted->wait_for_line("created"));
    BOOST_TEST(writer.write("welcome back") == 1u);
    BOOST_TEST(restarted->wait_exit(5s).value_or(-999) == 0);
    BOOST_TEST(test::records_of(*restarted) == std::vector<std::string>{"welcome back"});
}

BOOST_AUTO_TEST_CASE(duplicated_handle_across_processes_reads_each_record_once)
{
    test::host host;
    auto creator = test::peer(host, {"create", "work/queue", "--duplicate"});
    BOOST_REQUIRE(creator->wait_for_line("token "));
    const auto token = token_of(*creator);
    BOOST_REQUIRE_EQUAL(token.size(), 32u);
    auto child = test::peer(host, {"attach", token});
    BOOST_REQUIRE(child->wait_for_line("created"));
    // A second attach with the same token fails: tokens work once.
    auto thief = test::peer(host, {"attach", token});
    BOOST_TEST(thief->wait_exit(5s).value_or(-999) == 1);
    BOOST_TEST(thief->stdout_text().find("error 6") != std::string::npos);
    // The parent dies; the slot lives on in the child.
    creator->signal(SIGKILL);
    BOOST_TEST(creator->wait_exit(5s).has_value());

    connection bus;
    bus.connect(host.socket());
    auto owner_again = client_slot::open(bus, "work/queue");
    for (int i = 0; i < 300; ++i)
        owner_again.write(std::to_string(i));
    BOOST_TEST(child->wait_for_lines("record ", 300, 10s));
    auto seen = test::records_of(*child);
    BOOST_TEST(std::set<std::string>(seen.begin(), seen.end()).size() == 300u);
}

BOOST_AUTO_TEST_CASE(two_processes_share_a_duplicated_slot_without_double_reads)
{
    test::host host;
    connection bus;
    bus.connect(host.socket());
    auto slot = server_slot::create(bus, "shared/queue");
    auto one = test::peer(host, {"attach", slot.duplicate()});
    auto two = test::peer(host, {"attach", slot.duplicate()});
    BOOST_REQUIRE(one->wait_for_line("created"));
    BOOST_REQUIRE(two->wait_for_line("created"));
    connection writer_bus;
    writer_bus.connect(host.socket());
    auto writer = client_slot::open(writer_bus, "shared/queue");
    for (int i = 0; i < 1000; ++i)
        writer.async_write(asio::buffer(std::to_string(i)),
                           [](boost::system::error_code, std::uint32_t) {});
    writer.write("last");
    // Every record read exactly once between the two.
    const auto until = std::chrono::steady_clock::now() + 20s;
    std::size_t total = 0;
    while (std::chrono::steady_clock::now() < until) {
        one->wait_for_line("never", 20ms);
        two->wait_for_line("never", 20ms);
        total = test::records_of(*one).size() + test::records_of(*two).size();
        if (total >= 1001)
            break;
    }
    auto a = test::records_of(*one), b = test::records_of(*two);
    std::set<std::string> all(a.begin(), a.end());
    all.insert(b.begin(), b.end());
    BOOST_TEST(a.size() + b.size() == 1001u);
    BOOST_TEST(all.size() == 1001u);
    BOOST_TEST(slot.info().message_count == 0u);
}

BOOST_AUTO_TEST_CASE(garbage_gets_an_error_and_costs_nobody_else)
{
    test::host host;
    bystander others(host);
    {
        raw_client garbage(host.socket());
        const std::uint8_t junk[] = {'G', 'E', 'T', ' ', '/', ' ', 'H',  'T',
                                     'T', 'P', '/', '1', '.', '1', '\r', '\n'};
        garbage.send(junk);
        BOOST_TEST(fatal_error_of(garbage) == 13u);
    }
    {
        raw_client no_hello(host.socket());
        no_hello.send_frame(open_frame{1, 1, 0, "bystander/inbox"});
        BOOST_TEST(fatal_error_of(no_hello) == 13u);
    }
    {
        raw_client unknown(host.socket());
        unknown.send_frame(hello_frame{});
        const std::uint8_t bad_type[] = {1, 0, 0, 0, 0x77};
        unknown.send(bad_type);
        BOOST_TEST(fatal_error_of(unknown) == 13u);
    }
    {
        raw_client old(host.socket());
        old.send_frame(hello_frame{protocol_magic, 9, 9, 0, 0, "from the future", ""});
        BOOST_TEST(fatal_error_of(old) == 50u);
    }
    others.check();
}

BOOST_AUTO_TEST_CASE(lying_lengths_get_an_error_and_cost_nobody_else)
{
    test::host host;
    bystander others(host);
    {
        // A length over the host's maximum: refused before any body arrives.
        raw_client liar(host.socket());
        liar.send_frame(hello_frame{});
        const std::uint8_t huge[] = {0xff, 0xff, 0xff, 0x7f, 0x05};
        liar.send(huge);
        BOOST_TEST(fatal_error_of(liar) == 13u);
    }
    {
        // A string length inside a frame that says more than the frame holds.
        raw_client liar(host.socket());
        liar.send_frame(hello_frame{});
        byte_buffer frame;
        encode(frame, open_frame{1, 1, 0, "bystander/inbox"});
        boost::endian::store_little_u16(frame.data() + 17, 4000); // the name's length
        liar.send(frame);
        BOOST_TEST(fatal_error_of(liar) == 13u);
    }
    {
        // A read report that claims records it was never sent.
        raw_client liar(host.socket());
        liar.send_frame(hello_frame{});
        liar.send_frame(create_frame{1, 1, 0, 0, 0, 0, "liar/slot"});
        liar.send_frame(read_report_frame{1, 1000, 16});
        BOOST_TEST(fatal_error_of(liar) == 13u);
    }
    others.check();
}

BOOST_AUTO_TEST_CASE(a_writer_dying_mid_frame_delivers_nothing_half_done)
{
    test::host host;
    bystander others(host);
    {
        raw_client dying(host.socket());
        dying.send_frame(hello_frame{});
        dying.send_frame(open_frame{1, 1, 0, "bystander/inbox"});
        byte_buffer frame;
        const std::string record(1000, 'x');
        record_list_builder(frame_type::write)
            .append(frame, 1,
                    {reinterpret_cast<const std::uint8_t*>(record.data()), record.size()});
        dying.send(byte_span(frame).first(frame.size() / 2)); // and dies
    }
    BOOST_TEST(others.slot.info().message_count == 1u); // only "before"
    others.check();
}

BOOST_AUTO_TEST_CASE(a_flooding_client_is_paused_not_the_host)
{
    test::host host({"--max-outbox", "65536"});
    bystander others(host);
    raw_client flood(host.socket());
    flood.send_frame(hello_frame{});
    flood.send_frame(open_frame{1, 1, 0, "nobody/there"}); // fails: every write will too
    // Requests whose answers it never reads: the host stops reading it, and
    // its socket buffers fill; the send side gives up after a while.
    byte_buffer burst;
    for (int i = 0; i < 20000; ++i)
        encode(burst, info_frame{static_cast<std::uint32_t>(i), 99});
    std::thread sender([&] {
        boost::system::error_code ec;
        flood.socket.non_blocking(false);
        asio::write(flood.socket, asio::buffer(burst), ec);
    });
    std::this_thread::sleep_for(200ms);
    others.check(); // still served, promptly
    flood.socket.shutdown(asio::socket_base::shutdown_both);
    sender.join();
    BOOST_TEST(others.slot.info().message_count == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_slot_holds_its_writer_back_and_loses_nothing)
{
    // Budgets this small; and it reads within --slow-after, so it is not marked slow.
    test::host host({"--max-record-size", "1024", "--slow-after", "10000"});
    connection bus;
    bus.connect(host.socket());
    // A 2 KiB budget and a reader that does not read yet.
    auto slot =
        server_slot::create(bus, "slow/consumer", slot_options{0, mailslot_wait_forever, 2048});
    auto other = server_slot::create(bus, "fast/consumer", 0, 1000);
    auto writer = test::peer(host, {"write", "slow/consumer", "--count", "200", "--size", "100"});
    BOOST_TEST(!writer->wait_for_line("acked", 500ms)); // held back
    BOOST_TEST(slot.info().queued_bytes <= 2048u + 100u);
    // Other slots keep flowing meanwhile.
    connection writer_bus;
    writer_bus.connect(host.socket());
    BOOST_TEST(client_slot::open(writer_bus, "fast/consumer").write("unaffected") == 1u);
    BOOST_TEST(other.read() == "unaffected");
    // The reader reads: everything arrives, nothing was lost.
    for (int i = 0; i < 200; ++i) {
        auto r = slot.read();
        BOOST_TEST_REQUIRE(r.rfind("w-" + std::to_string(i), 0) == 0);
    }
    BOOST_TEST(writer->wait_for_line("acked 200 failed 0", 10s));
}

BOOST_AUTO_TEST_CASE(steady_back_pressure_keeps_the_host_within_its_bounds)
{
    // A writer process streams 256 MiB at a slot of 256 KiB that this test
    // drains as fast as it can: the writer is held back all along. The host
    // must stay near its configured bounds, not grow with what went through.
    test::host h;
    connection bus;
    bus.connect(h.socket());
    slot_options options;
    options.byte_budget = 256u << 10;
    options.read_timeout = 10000;
    auto inbox = server_slot::create(bus, "pressure/inbox", options);
    constexpr int count = 256 * 1024;
    auto writer = test::peer(
        h, {"write", "pressure/inbox", "--count", std::to_string(count), "--size", "1024"});
    std::string record(2048, '\0');
    for (int i = 0; i < count; ++i) {
        const auto n = inbox.read(boost::asio::buffer(record));
        BOOST_REQUIRE_EQUAL(n, 1024u);
    }
    BOOST_REQUIRE(writer->wait_for_line("acked " + std::to_string(count) + " failed 0", 30s));
    connection admin_bus;
    admin_bus.connect(h.socket());
    const auto stats = admin(admin_bus, "stats");
    const auto peak = stats.at("peak_rss_bytes").to_number<std::int64_t>();
    BOOST_TEST_MESSAGE("host peak RSS " << peak / 1024 << " KiB after 256 MiB under back-pressure");
    // Bounds: 256 KiB queued, 8 MiB held, 8 MiB outbox, buffers; far from 256 MiB.
    // (AddressSanitizer keeps freed memory in quarantine: RSS says nothing there.)
    if (!test::measuring_under_a_sanitizer())
        BOOST_TEST(peak < 32 * 1024 * 1024);
}

// Faults under load: a million records fanned out while subscriber processes
// are SIGKILLed and restarted and one reader is SIGSTOPped for seconds. The
// live subscriber loses nothing, another slot's traffic is untouched, the
// stopped reader is marked slow and told what it missed, the host stays bounded.
BOOST_AUTO_TEST_CASE(faults_under_load_cost_live_receivers_nothing)
{
    test::host host({"--slow-after", "500"});
    constexpr long records = 1'000'000;
    auto live = test::peer(
        host, {"create", "live", "--subscribe", "load/*", "--count", std::to_string(records)});
    auto frozen = test::peer(host, {"create", "frozen", "--subscribe", "load/*"});
    auto other = test::peer(host, {"create", "other/inbox", "--count", "20000"});
    for (auto* p : {&live, &frozen, &other})
        BOOST_REQUIRE((*p)->wait_for_line("created"));
    auto writer =
        test::peer(host, {"write", "load/x", "--count", std::to_string(records), "--size", "16"});
    auto other_writer =
        test::peer(host, {"write", "other/inbox", "--count", "20000", "--prefix", "o"});
    frozen->signal(SIGSTOP);
    // Subscribers that die mid-stream, three times over, and come back.
    for (int round = 0; round < 3; ++round) {
        std::vector<std::unique_ptr<test::child>> victims;
        for (int v = 0; v < 2; ++v) {
            victims.push_back(test::peer(
                host, {"create", "victim/" + std::to_string(v), "--subscribe", "load/*"}));
            BOOST_REQUIRE(victims.back()->wait_for_line("created"));
        }
        std::this_thread::sleep_for(300ms); // the fault schedule: they read a while
        for (auto& v : victims)
            v->signal(SIGKILL);
        for (auto& v : victims)
            BOOST_REQUIRE(v->wait_exit(5s).has_value());
    }
    frozen->signal(SIGCONT);
    BOOST_TEST(live->wait_exit(120s).value_or(-999) == 0);
    BOOST_TEST(writer->wait_for_line("acked " + std::to_string(records) + " failed 0", 30s),
               writer->stdout_text());
    BOOST_TEST(other->wait_exit(30s).value_or(-999) == 0);
    BOOST_TEST(other_writer->wait_for_line("acked 20000 failed 0", 30s));
    // Every record, in order, to the live subscriber and to the other slot.
    const auto got = test::records_of(*live);
    BOOST_TEST(got.size() == static_cast<std::size_t>(records));
    long next = 0;
    for (const auto& r : got)
        if (std::stol(r.substr(2)) != next++) {
            BOOST_TEST(false, "out of order or missing at " << next - 1 << ": " << r);
            break;
        }
    BOOST_TEST(test::records_of(*other).size() == 20000u);
    // The stopped reader: every record either queued for it or counted.
    const auto listing = test::cli(host, {"ls", "frozen", "--json"}).json();
    const auto& f = listing.at("slots").at(0);
    BOOST_TEST(f.at("records_in").to_number<long>() + f.at("dropped").to_number<long>() == records);
    BOOST_TEST(f.at("slow_marks").to_number<long>() >= 1);
    connection bus;
    bus.connect(host.socket());
    const auto peak = admin(bus, "stats").at("peak_rss_bytes").to_number<std::int64_t>();
    BOOST_TEST_MESSAGE("host peak RSS under faults: " << peak / 1024 << " KiB");
    if (!test::measuring_under_a_sanitizer())
        BOOST_TEST(peak < 256 * 1024 * 1024); // slots' budgets and outboxes, not the traffic
    frozen->signal(SIGKILL);
}
