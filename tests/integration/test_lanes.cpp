#define BOOST_TEST_MODULE lanes
// The shared-memory lane (docs/lanes.md) against a real slotbusd: large
// records go through a writer's memfd lane, whole, in order, fanned out;
// the host's stats show they did; and no reader, writer or liar can change
// or hold what others read.
#include "host_fixture.hpp"

#include <slotbus/host_admin.hpp>
#include <slotbus/protocol.hpp>
#include <slotbus/slotbus.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace slotbus;
using namespace std::chrono_literals;
using unix_stream = boost::asio::local::stream_protocol;

namespace {

/// Record `i` of `size` bytes: every byte depends on both, so a record read
/// whole and in its place is told from any other or a torn one.
std::string record_of(std::size_t i, std::size_t size)
{
    std::string r(size, '\0');
    for (std::size_t j = 0; j < size; ++j)
        r[j] = static_cast<char>((i * 131 + j * 7 + j / 4096) & 0xff);
    return r;
}

std::uint64_t host_stat(connection& bus, const char* field)
{
    return admin(bus, "stats").at(field).to_number<std::uint64_t>();
}

// A host whose slots hold a few large records.
const std::vector<std::string> roomy = {"--slot-budget", "134217728"};

/// The lanes the host process holds open or mapped, from /proc.
std::size_t lanes_held_by(int pid)
{
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& fd :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
        if (std::filesystem::read_symlink(fd.path(), ec).string().find("slotbus-lane") !=
            std::string::npos)
            ++n;
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    for (std::string line; std::getline(maps, line);)
        n += line.find("slotbus-lane") != std::string::npos ? 1 : 0;
    return n;
}

/// A reader that speaks the wire protocol by hand and receives lane fds:
/// hostile, it tries what a reader must not be able to do with them.
struct raw_reader {
    boost::asio::io_context io;
    unix_stream::socket socket{io};
    std::vector<int> fds;
    std::vector<std::uint8_t> in;

    explicit raw_reader(const std::string& path)
    {
        socket.connect(unix_stream::endpoint(path));
        send(hello_frame{protocol_magic,
                         protocol_version,
                         protocol_version,
                         static_cast<std::uint32_t>(::getpid()),
                         hello_lanes,
                         "raw",
                         {}});
    }
    ~raw_reader()
    {
        for (int fd : fds)
            ::close(fd);
    }
    template <class Frame> void send(const Frame& m)
    {
        byte_buffer bytes;
        encode(bytes, m);
        boost::asio::write(socket, boost::asio::buffer(bytes));
    }
    /// The next frame of `type` (others are skipped), its body; fds kept.
    std::optional<std::vector<std::uint8_t>> next(frame_type type,
                                                  std::chrono::milliseconds deadline = 5s)
    {
        const auto until = std::chrono::steady_clock::now() + deadline;
        while (true) {
            while (in.size() >= frame_header_size) {
                const auto length = boost::endian::load_little_u32(in.data());
                if (in.size() < 4 + length)
                    break;
                const auto got = static_cast<frame_type>(in[4]);
                std::vector<std::uint8_t> body(in.begin() + frame_header_size,
                                               in.begin() + 4 + length);
                in.erase(in.begin(), in.begin() + 4 + length);
                if (got == type)
                    return body;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            pollfd p{socket.native_handle(), POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1)
                return std::nullopt;
            std::uint8_t bytes[65536];
            iovec iov{bytes, sizeof bytes};
            alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            const auto n = ::recvmsg(socket.native_handle(), &msg, MSG_CMSG_CLOEXEC);
            if (n <= 0)
                return std::nullopt;
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_type == SCM_RIGHTS)
                    for (std::size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                        int fd = -1;
                        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                        fds.push_back(fd);
                    }
            in.insert(in.end(), bytes, bytes + n);
        }
    }
    /// True once the host has closed the connection, within the deadline.
    bool closed_by_host(std::chrono::milliseconds deadline = 5s)
    {
        pollfd p{socket.native_handle(), POLLRDHUP, 0};
        return ::poll(&p, 1, static_cast<int>(deadline.count())) == 1 &&
               (p.revents & (POLLHUP | POLLRDHUP)) != 0;
    }
};

template <class Frame> Frame decoded(const std::vector<std::uint8_t>& body)
{
    Frame m;
    BOOST_REQUIRE_MESSAGE(decode(byte_span(body.data(), body.size()), m),
                          "a frame of type " << static_cast<int>(Frame::type) << ", " << body.size()
                                             << " bytes");
    return m;
}

/// A connection on an executor thread of its own: writes from another thread.
struct executor_connection {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
        boost::asio::make_work_guard(io);
    connection bus{io.get_executor(), connection_options{"threaded", 256}};
    std::thread runner{[this] { io.run(); }};
    ~executor_connection()
    {
        bus.close();
        work.reset();
        runner.join();
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(large_records_go_by_lane_whole_and_in_order)
{
    test::host host(roomy);
    connection reader_bus{{"reader", 256}};
    connection writer_bus{{"writer", 256}};
    reader_bus.connect(host.socket());
    writer_bus.connect(host.socket());
    // Beyond the socket's limit: a lane takes it.
    BOOST_TEST(writer_bus.max_record_size() == 16u << 20);
    auto slot = server_slot::create(reader_bus, "big");
    auto writer = client_slot::open(writer_bus, "big");
    const std::vector<std::size_t> sizes = {16 << 10, 100,      64 << 10, 1 << 20, 3,
                                            16 << 20, 70 << 10, 1 << 20,  20000,   5};
    for (std::size_t i = 0; i < sizes.size(); ++i)
        BOOST_TEST(writer.write(record_of(i, sizes[i])) == 1u);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const auto got = slot.read();
        BOOST_TEST_REQUIRE(got.size() == sizes[i]);
        BOOST_TEST((got == record_of(i, sizes[i])), "record " << i << " of " << sizes[i]);
    }
    // The seven of 16 KiB or more, the first too: it waits for the
    // writer's lane to be made.
    BOOST_TEST(host_stat(reader_bus, "lane_writes") == 7u);
    BOOST_TEST(host_stat(reader_bus, "lanes") == 1u);
}

BOOST_AUTO_TEST_CASE(a_lane_is_reused_as_its_records_are_read)
{
    // 600 records of 64 KiB through an 8 MiB lane: it wraps round several
    // times. Pipelined writes from another thread, 60 at a time, each round
    // read before the next is written: the lane is always let go in time.
    test::host host(roomy);
    connection reader_bus{{"reader", 256}};
    reader_bus.connect(host.socket());
    executor_connection writer;
    writer.bus.connect(host.socket());
    auto slot = server_slot::create(reader_bus, "wrap");
    auto to = client_slot::open(writer.bus, "wrap");
    constexpr std::size_t rounds = 10, per_round = 60, size = 64 << 10;
    for (std::size_t round = 0; round < rounds; ++round) {
        std::vector<std::string> records;
        for (std::size_t i = 0; i < per_round; ++i)
            records.push_back(record_of(round * per_round + i, size));
        std::vector<std::future<std::uint32_t>> acks;
        for (const auto& r : records)
            acks.push_back(to.async_write(boost::asio::buffer(r), boost::asio::use_future));
        for (std::size_t i = 0; i < per_round; ++i)
            BOOST_TEST_REQUIRE((slot.read() == records[i]),
                               "record " << i << " of round " << round);
        for (auto& a : acks)
            BOOST_TEST(a.get() == 1u);
        std::this_thread::sleep_for(20ms); // the reads reported, the lane released to the writer
    }
    const auto by_lane = host_stat(reader_bus, "lane_writes");
    BOOST_TEST_MESSAGE(by_lane << " of " << rounds * per_round << " records went by lane");
    BOOST_TEST(by_lane == rounds * per_round); // the lane (128 records) wrapped round four times
}

BOOST_AUTO_TEST_CASE(a_batch_larger_than_its_lane_goes_by_lane_in_pieces)
{
    // 24 records of 1 MiB in one batch through an 8 MiB lane: it could never
    // be placed whole, so it goes in pieces, each as the reader frees room,
    // and still completes once, with every record counted.
    test::host host(roomy);
    connection reader_bus{{"reader", 256}};
    reader_bus.connect(host.socket());
    executor_connection writer;
    writer.bus.connect(host.socket());
    auto slot = server_slot::create(reader_bus, "batch");
    auto to = client_slot::open(writer.bus, "batch");
    constexpr std::size_t count = 24, size = 1 << 20;
    std::vector<std::string> records;
    std::vector<boost::asio::const_buffer> buffers;
    for (std::size_t i = 0; i < count; ++i)
        records.push_back(record_of(i, size));
    for (const auto& r : records)
        buffers.push_back(boost::asio::buffer(r));
    auto delivered = to.async_write_batch(buffers, boost::asio::use_future);
    for (std::size_t i = 0; i < count; ++i)
        BOOST_TEST_REQUIRE((slot.read() == records[i]), "record " << i);
    BOOST_TEST(delivered.get() == count);
    BOOST_TEST(host_stat(reader_bus, "lane_writes") == count);
}

BOOST_AUTO_TEST_CASE(fan_out_by_lane_to_four_subscribers)
{
    test::host host(roomy);
    connection writer_bus{{"writer", 256}};
    writer_bus.connect(host.socket());
    std::vector<std::unique_ptr<connection>> buses;
    std::vector<server_slot> slots;
    std::vector<subscription> subs;
    for (int i = 0; i < 4; ++i) {
        buses.push_back(std::make_unique<connection>(connection_options{"sub", 256}));
        buses.back()->connect(host.socket());
        slots.push_back(server_slot::create(*buses.back(), "sub/" + std::to_string(i)));
        subs.push_back(slots.back().subscribe("frames/**"));
    }
    auto frames = client_slot::open(writer_bus, "frames/camera");
    const std::vector<std::size_t> sizes = {1 << 20, 64 << 10, 10, 4 << 20, 16 << 10};
    for (std::size_t i = 0; i < sizes.size(); ++i)
        BOOST_TEST(frames.write(record_of(i, sizes[i])) == 4u);
    for (auto& s : slots)
        for (std::size_t i = 0; i < sizes.size(); ++i)
            BOOST_TEST_REQUIRE((s.read() == record_of(i, sizes[i])), "record " << i);
    // Each written once, shared by four.
    BOOST_TEST(host_stat(writer_bus, "lane_writes") == 4u);
}

BOOST_AUTO_TEST_CASE(lanes_off_by_environment_keep_every_record_on_the_socket)
{
    test::host host(roomy);
    ::setenv("SLOTBUS_LANES", "0", 1);
    connection writer_bus{{"writer", 256}};
    writer_bus.connect(host.socket());
    ::unsetenv("SLOTBUS_LANES");
    connection reader_bus{{"reader", 256}};
    reader_bus.connect(host.socket());
    BOOST_TEST(writer_bus.max_record_size() == 1u << 20); // the socket's limit only
    auto slot = server_slot::create(reader_bus, "plain");
    auto writer = client_slot::open(writer_bus, "plain");
    BOOST_TEST(writer.write(record_of(1, 1 << 20)) == 1u);
    std::error_code ec;
    writer.write(record_of(2, (1 << 20) + 1), ec);
    BOOST_TEST(ec == error::message_exceeds_max_size);
    BOOST_TEST((slot.read() == record_of(1, 1 << 20)));
    BOOST_TEST(host_stat(reader_bus, "lane_writes") == 0u);
}

BOOST_AUTO_TEST_CASE(a_reader_cannot_change_what_it_was_lent)
{
    test::host host(roomy);
    raw_reader raw(host.socket());
    BOOST_REQUIRE(raw.next(frame_type::welcome));
    raw.send(create_frame{1, 1, 0, mailslot_wait_forever, 0, 0, "lent"});
    BOOST_REQUIRE(raw.next(frame_type::result));
    raw.send(read_report_frame{1, 0, 64}); // push ahead
    connection honest_bus{{"honest", 256}};
    honest_bus.connect(host.socket());
    auto honest = server_slot::create(honest_bus, "honest");
    auto sub = honest.subscribe("lent");
    connection writer_bus{{"writer", 256}};
    writer_bus.connect(host.socket());
    auto writer = client_slot::open(writer_bus, "lent");
    const std::vector<std::string> records = {record_of(6, 256 << 10), record_of(7, 256 << 10)};
    BOOST_TEST(writer.write(records[0]) == 2u); // by lane: it waits for its lane to be made
    BOOST_TEST(writer.write(records[1]) == 2u);
    BOOST_TEST((honest.read() == records[0]));

    const auto open = decoded<lane_open_frame>(*raw.next(frame_type::lane_open));
    BOOST_TEST(open.role == static_cast<std::uint32_t>(lane_role::reader));
    BOOST_REQUIRE_EQUAL(raw.fds.size(), 1u);
    const int fd = raw.fds.front();
    // Both records pushed, in one records_lane frame or two: their
    // descriptors point into the lane.
    std::vector<lane_descriptor> pushed;
    while (pushed.size() < records.size()) {
        const auto body = raw.next(frame_type::records_lane);
        BOOST_REQUIRE(body);
        const auto frame = decoded<records_lane_frame>(*body);
        BOOST_TEST(frame.lane == open.lane);
        BOOST_TEST(for_each_lane_descriptor(frame.descriptors.bytes,
                                            [&](lane_descriptor d) { pushed.push_back(d); }));
    }
    BOOST_REQUIRE_EQUAL(pushed.size(), records.size());
    // Its fd reads; it does not write, grow, shrink, or map for writing —
    // nor does one opened anew through /proc.
    BOOST_TEST((::fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
    BOOST_TEST(::mmap(nullptr, open.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    BOOST_TEST(::ftruncate(fd, 0) == -1);
    BOOST_TEST(::ftruncate(fd, static_cast<off_t>(open.size * 2)) == -1);
    const int again = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDWR);
    if (again >= 0) {
        BOOST_TEST(::pwrite(again, "x", 1, 0) == -1);
        BOOST_TEST(errno == EPERM);
        BOOST_TEST(::mmap(nullptr, open.size, PROT_WRITE, MAP_SHARED, again, 0) == MAP_FAILED);
        BOOST_TEST(::fcntl(again, F_ADD_SEALS, F_SEAL_WRITE) == -1); // sealed for good
        ::close(again);
    }
    // A private copy-on-write mapping is its own: the lane does not change.
    void* mine = ::mmap(nullptr, open.size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    BOOST_REQUIRE(mine != MAP_FAILED);
    std::memset(mine, 'X', open.size);
    ::munmap(mine, open.size);
    BOOST_TEST((honest.read() == records[1]));
    // The same bytes, read by hand from the lane, are the records.
    void* view = ::mmap(nullptr, open.size, PROT_READ, MAP_SHARED, fd, 0);
    BOOST_REQUIRE(view != MAP_FAILED);
    for (std::size_t i = 0; i < records.size(); ++i) {
        BOOST_TEST(pushed[i].length == records[i].size());
        BOOST_TEST(std::memcmp(static_cast<char*>(view) + pushed[i].position % open.size,
                               records[i].data(), records[i].size()) == 0,
                   "record " << i);
    }
    ::munmap(view, open.size);
}

BOOST_AUTO_TEST_CASE(a_reader_that_never_reads_holds_back_no_one_else)
{
    // The raw reader is sent records by lane and never reports them read:
    // its slot fills and drops its oldest (letting them go), while the
    // writer goes on and another subscriber gets every record.
    test::host host(roomy);
    raw_reader raw(host.socket());
    BOOST_REQUIRE(raw.next(frame_type::welcome));
    raw.send(create_frame{1, 1, 0, mailslot_wait_forever, 4 << 20,
                          static_cast<std::uint32_t>(overflow_policy::drop_oldest), "stuck"});
    BOOST_REQUIRE(raw.next(frame_type::result));
    raw.send(read_report_frame{1, 0, 64}); // 8 MiB pushed ahead, never reported read
    connection honest_bus{{"honest", 256}};
    honest_bus.connect(host.socket());
    auto honest = server_slot::create(honest_bus, "honest");
    auto sub = honest.subscribe("stuck");
    connection writer_bus{{"writer", 256}};
    writer_bus.connect(host.socket());
    auto writer = client_slot::open(writer_bus, "stuck");
    constexpr std::size_t count = 400, size = 128 << 10; // 50 MiB through an 8 MiB lane
    std::thread reading([&] {
        for (std::size_t i = 0; i < count; ++i)
            BOOST_TEST_REQUIRE((honest.read() == record_of(i, size)), "record " << i);
    });
    for (std::size_t i = 0; i < count; ++i)
        BOOST_TEST_REQUIRE(writer.write(record_of(i, size)) == 2u);
    reading.join();
    BOOST_TEST(!raw.closed_by_host(0ms)); // it misbehaves within the rules: it stays
    // The lane filled with what the raw reader holds and stalled: after one
    // wait for room, the rest took the socket.
    const auto by_lane = host_stat(writer_bus, "lane_writes");
    BOOST_TEST_MESSAGE(by_lane << " of " << count << " records went by lane");
    BOOST_TEST(by_lane >= 32u);
    BOOST_TEST(by_lane < count);
}

BOOST_AUTO_TEST_CASE(a_writer_whose_descriptor_lies_loses_only_its_connection)
{
    test::host host(roomy);
    connection reader_bus{{"reader", 256}};
    reader_bus.connect(host.socket());
    auto slot = server_slot::create(reader_bus, "target");
    // The liar: a writer handle, a lane, then descriptors that lie.
    // Returns what the host said before it closed the liar's connection.
    const auto lie = [&](lane_descriptor d) -> std::string {
        raw_reader liar(host.socket());
        BOOST_REQUIRE(liar.next(frame_type::welcome));
        liar.send(open_frame{1, 2, 0, "target"});
        BOOST_REQUIRE(liar.next(frame_type::result));
        liar.send(lane_request_frame{2, 64 << 10});
        const auto open = decoded<lane_open_frame>(*liar.next(frame_type::lane_open));
        BOOST_REQUIRE_NE(open.lane, 0u);
        liar.send(lane_mapped_frame{open.lane});
        write_lane_frame w{2, open.lane, {}};
        std::vector<std::uint8_t> runs;
        append_lane_descriptor(runs, d);
        w.descriptors.bytes = byte_span(runs.data(), runs.size());
        liar.send(w);
        const auto fatal = liar.next(frame_type::fatal);
        if (!fatal || !liar.closed_by_host())
            return "still connected";
        const auto m = decoded<fatal_frame>(*fatal);
        BOOST_TEST(m.error == static_cast<std::uint32_t>(error::invalid_data));
        return std::string(m.message);
    };
    const std::string lies = "a lane descriptor that lies";
    BOOST_TEST(lie({64, 100}) == lies);            // not where the first record goes
    BOOST_TEST(lie({0, 0}) == lies);               // empty
    BOOST_TEST(lie({0, (16u << 20) + 1}) == lies); // over the largest record
    BOOST_TEST(lie({0, 16u << 20}) == lies);       // over the lane's end (8 MiB)
    // The honest writer and reader go on; no lane of the liars is left.
    connection writer_bus{{"writer", 256}};
    writer_bus.connect(host.socket());
    auto writer = client_slot::open(writer_bus, "target");
    BOOST_TEST(writer.write(record_of(3, 1 << 20)) == 1u);
    BOOST_TEST((slot.read() == record_of(3, 1 << 20)));
    BOOST_TEST(test::eventually([&] { return host_stat(reader_bus, "lanes") == 1u; }));
}

BOOST_AUTO_TEST_CASE(a_killed_holder_leaves_no_lane_behind)
{
    test::host host(roomy);
    const int host_pid = host.process().pid();
    int ready[2];
    BOOST_REQUIRE(::pipe(ready) == 0);
    const pid_t holder = ::fork();
    BOOST_REQUIRE(holder >= 0);
    if (holder == 0) {
        // A reader process that maps its lane, is pushed records by it and
        // holds them unread, until it is killed.
        ::close(ready[0]);
        raw_reader raw(host.socket());
        bool held = raw.next(frame_type::welcome).has_value();
        raw.send(create_frame{1, 1, 0, mailslot_wait_forever, 0, 0, "victim"});
        held = held && raw.next(frame_type::result);
        raw.send(read_report_frame{1, 0, 64});
        (void)::write(ready[1], "c", 1);
        const auto open = raw.next(frame_type::lane_open, 20s);
        held = held && open && !raw.fds.empty();
        if (held) {
            const auto m = decoded<lane_open_frame>(*open);
            held = ::mmap(nullptr, m.size, PROT_READ, MAP_SHARED, raw.fds.front(), 0) != MAP_FAILED;
        }
        held = held && raw.next(frame_type::records_lane, 20s);
        (void)::write(ready[1], held ? "h" : "n", 1);
        ::pause();
        ::_exit(0);
    }
    ::close(ready[1]);
    char said = 0;
    BOOST_REQUIRE(::read(ready[0], &said, 1) == 1 && said == 'c');
    {
        connection writer_bus{{"writer", 256}};
        writer_bus.connect(host.socket());
        auto writer = client_slot::open(writer_bus, "victim");
        for (int i = 0; i < 20; ++i)
            BOOST_TEST(writer.write(record_of(static_cast<std::size_t>(i), 256 << 10)) == 1u);
        BOOST_TEST((::read(ready[0], &said, 1) == 1 && said == 'h'));
        BOOST_TEST(lanes_held_by(host_pid) > 0u);
        ::kill(holder, SIGKILL);
        int status = 0;
        ::waitpid(holder, &status, 0);
        BOOST_TEST(WIFSIGNALED(status));
        // The writer's lane lives on while its handle does; still usable.
        std::error_code ec; // no reader now: refused as with no lane
        BOOST_TEST(writer.write(record_of(99, 256 << 10), ec) == 0u);
        BOOST_TEST(ec == error::file_not_found);
    }
    ::close(ready[0]);
    // The writer closed too: the host holds no lane memory at all.
    connection probe{{"probe", 256}};
    probe.connect(host.socket());
    BOOST_TEST(test::eventually([&] { return host_stat(probe, "lane_bytes") == 0u; }));
    BOOST_TEST(test::eventually([&] { return lanes_held_by(host_pid) == 0u; }));
}
