// slotbus-bench: records/s and round trips through slotbus, against raw
// AF_UNIX baselines measured in the same run. Every writer, reader, relay and
// host is its own process.
//
//   slotbus-bench [--count N] [--sizes 16,128,1024,65536] [--rounds N] [--json]
//                 [--plot PREFIX]
//                 [--only 1->1|1->4|4->1|typed|web|lane|fan-out|memory|cross-host|nats-bridge]
//                 [--repeat N]
//                 [--cross-count N] [--lane-sizes 1024,...] [--lane-mib N]
//                 [--fan-outs 1,4,16,32] [--memory-slots 1000,10000,100000]
//
// The lane (docs/lanes.md): 1 -> 1, 1 -> 4 and round trips from 1 KiB to
// 16 MiB with every record by lane and, up to the socket's 1 MiB cap, every
// record by socket; beside them raw one hop and raw-shm, a memcpy into a
// shared ring with eventfd wakes. Ratios are to raw one hop, paired per run.
// Fan-out: 1 -> N subscribers at 128 B, delivered/s, ratio to N = 4.
// Memory: the host's resident growth per slot (each with one subscription)
// at 1 000 to 100 000 slots, against nats-server's per subscription, and the
// time `slotbus ls` and `stats` take there.
//
// Scenarios: 1 writer -> 1 reader; 1 -> 4 subscribers (fan-out through a
// topic); 4 writers -> 1 reader; typed envelopes 1 -> 1; ping-pong round
// trips; 1 -> 1 with the web view open and tailing ** (its ratio is to the
// same 1 -> 1 without it, in alternating runs). Baselines: raw one hop (writer -> reader) and raw
// two hops (writer -> a byte relay -> reader), batched in 32 KiB writes.
//
// Past one LAN (nats-server installed only, skipped with a message otherwise):
// a writer on host alpha, alpha's NATS bridge, a nats-server on loopback,
// beta's bridge, a subscriber on beta; core NATS. Baseline: NATS alone, a
// libnats publisher and subscriber through the same server, in the same run.
//
// Cross-host (root and `ip netns` only, skipped with a message otherwise):
// two network namespaces joined by a veth pair, a linked slotbusd in each;
// a writer on alpha writes to `\\beta\mailslot\bench\x`, a reader on beta
// reads. Baseline: a TLS 1.3 stream (Boost.Asio SSL) from a sender in one
// namespace to a receiver in the other over the same veth pair, the same
// records framed and batched as the raw baselines are.
//
// Timing: every process of a run gets ready (connected, slots created), then
// one start signal releases the writers; a rate is the records delivered over
// the time from that signal to the last record read (steady_clock is
// CLOCK_MONOTONIC, one clock for every process).
//
// Ratios: the machine's speed drifts between runs (a shared VM), so every
// slotbus run is paired with a raw two-hop run made just before it, and a
// scenario's ratio is the median of its runs' own ratios; round trips
// alternate raw and slotbus in chunks, pooled.
#include <slotbus/slotbus.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <iterator>
#include <nats/nats.h>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t batch_bytes = 32 * 1024;

// ---- processes and pipes ----------------------------------------------------------------------

// Runs f in a child process; returns its pid.
pid_t spawn(const std::function<int()>& f)
{
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        try {
            ::_exit(f());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "slotbus-bench: a child process failed: %s\n", e.what());
            ::_exit(9);
        }
    }
    return pid;
}

int reap(pid_t pid)
{
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A relay never sees EOF (every process holds copies of its sockets): end it.
void stop(pid_t relay)
{
    if (relay) {
        ::kill(relay, SIGKILL);
        reap(relay);
    }
}

void write_all(int fd, const void* data, std::size_t n)
{
    const auto* p = static_cast<const char*>(data);
    while (n) {
        const auto w = ::write(fd, p, n);
        if (w <= 0)
            std::exit(3);
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// A child reports one line of numbers to the parent through a pipe.
struct report_pipe {
    int fds[2];
    report_pipe() { (void)::pipe(fds); }
    void send(const std::string& line) const { write_all(fds[1], line.data(), line.size()); }
    // One line: forked children hold copies of the write end, so no EOF comes.
    std::string receive() const
    {
        std::string out;
        char c;
        while (::read(fds[0], &c, 1) == 1 && c != '\n')
            out += c;
        return out;
    }
};

// The start signal: writers wait on it once they are ready; the parent gives
// it, once, to all of them, and counts time from that moment.
struct start_gate {
    int fds[2];
    start_gate() { (void)::pipe(fds); }
    void wait() const
    {
        char c;
        (void)::read(fds[0], &c, 1);
    }
    clock_type::time_point open(std::size_t writers) const
    {
        const auto t0 = clock_type::now();
        const std::string go(writers, 'g');
        write_all(fds[1], go.data(), go.size());
        return t0;
    }
};

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_type::now().time_since_epoch())
        .count();
}

// A reader's report: records seen, and when (steady_clock ns) it read the last.
std::string seen_line(std::uint64_t seen, std::int64_t last_ns)
{
    return std::to_string(seen) + " " + std::to_string(last_ns) + "\n";
}

// ---- raw baselines -----------------------------------------------------------------------------

// Counts u32-length frames as `read_some(data, n)` (bytes read, <= 0 at the
// end) brings them, until `count` arrived or the stream ended; returns how many.
template <class ReadSome> std::size_t count_frames(std::size_t count, ReadSome read_some)
{
    // Streamed, not buffered whole: a record may be far larger than the buffer.
    std::vector<char> buffer(4 * batch_bytes);
    std::size_t seen = 0, header_have = 0, body_left = 0;
    char header[4];
    while (seen < count) {
        const auto n = read_some(buffer.data(), buffer.size());
        if (n <= 0)
            break;
        for (std::size_t at = 0, have = static_cast<std::size_t>(n); at < have;) {
            if (body_left) {
                const auto take = std::min(body_left, have - at);
                at += take;
                if ((body_left -= take) == 0)
                    ++seen;
                continue;
            }
            std::uint32_t length = 0;
            if (header_have == 0 && have - at >= 4) { // the usual case: a whole header
                std::memcpy(&length, buffer.data() + at, 4);
                at += 4;
            } else {
                header[header_have++] = buffer[at++];
                if (header_have < 4)
                    continue;
                std::memcpy(&length, header, 4);
                header_have = 0;
            }
            body_left = length;
            if (length == 0)
                ++seen;
        }
    }
    return seen;
}

// One batch of u32-length frames: what the raw senders write at a time.
template <class Write> void send_frames(std::size_t count, std::size_t size, Write write)
{
    std::vector<char> batch;
    batch.reserve(batch_bytes + size + 4);
    const std::string record(size, 'r');
    for (std::size_t i = 0; i < count; ++i) {
        const auto n = static_cast<std::uint32_t>(size);
        batch.insert(batch.end(), reinterpret_cast<const char*>(&n),
                     reinterpret_cast<const char*>(&n) + 4);
        batch.insert(batch.end(), record.begin(), record.end());
        if (batch.size() >= batch_bytes) {
            write(batch);
            batch.clear();
        }
    }
    if (!batch.empty())
        write(batch);
}

// Writes `count` records of `size` bytes as u32-length frames, in 32 KiB
// batches, from the start signal on.
int raw_writer(int fd, std::size_t count, std::size_t size, const report_pipe& ready,
               const start_gate& gate)
{
    ready.send("ready\n");
    gate.wait();
    send_frames(count, size, [fd](const std::vector<char>& batch) {
        write_all(fd, batch.data(), batch.size());
    });
    ::close(fd);
    return 0;
}

// Reads frames until `count` records arrived; reports when the last did.
int raw_reader(int fd, std::size_t count, const report_pipe& report)
{
    const auto seen =
        count_frames(count, [fd](char* p, std::size_t n) { return ::read(fd, p, n); });
    if (seen < count)
        return 4;
    report.send(seen_line(seen, now_ns()));
    return 0;
}

// A trivial relay: bytes in from one socket, out to the other, both ways.
int relay(int a, int b)
{
    std::vector<char> buffer(batch_bytes * 2);
    while (true) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(a, &set);
        FD_SET(b, &set);
        if (::select(std::max(a, b) + 1, &set, nullptr, nullptr, nullptr) <= 0)
            return 0;
        for (auto [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
            if (!FD_ISSET(from, &set))
                continue;
            const auto n = ::read(from, buffer.data(), buffer.size());
            if (n <= 0)
                return 0;
            write_all(to, buffer.data(), static_cast<std::size_t>(n));
        }
    }
}

// One latency, as the client appends it to its report line.
std::string ns_since(clock_type::time_point start)
{
    return std::to_string(
               std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start)
                   .count()) +
           " ";
}

std::vector<double> numbers_of(const std::string& line)
{
    std::vector<double> out;
    std::istringstream in(line);
    for (double v; in >> v;)
        out.push_back(v);
    return out;
}

struct rate {
    double records_per_s = 0;
    double mb_per_s = 0;
    std::uint64_t delivered = 0;
    std::uint64_t lost = 0; ///< expected minus delivered
};

// Every reader's report line: the records they saw in all, over the time from
// the start signal to the last record any of them read.
rate rate_of(const std::vector<std::string>& lines, clock_type::time_point t0,
             std::uint64_t expected, std::size_t size)
{
    rate r;
    std::int64_t last = 0;
    for (const auto& line : lines) {
        std::istringstream in(line);
        std::uint64_t seen = 0;
        std::int64_t at = 0;
        in >> seen >> at;
        r.delivered += seen;
        last = std::max(last, at);
    }
    const auto start =
        std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
    r.records_per_s = static_cast<double>(r.delivered) * 1e9 /
                      static_cast<double>(std::max<std::int64_t>(last - start, 1));
    r.mb_per_s = r.records_per_s * static_cast<double>(size) / 1e6;
    r.lost = expected > r.delivered ? expected - r.delivered : 0;
    return r;
}

rate raw_one_to_one(std::size_t count, std::size_t size, bool through_relay)
{
    report_pipe report, ready;
    start_gate gate;
    int ab[2], bc[2];
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, ab);
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, bc);
    const int reader_fd = through_relay ? bc[1] : ab[1];
    const pid_t reader = spawn([&] { return raw_reader(reader_fd, count, report); });
    pid_t relayer = 0;
    if (through_relay)
        relayer = spawn([&] { return relay(ab[1], bc[0]); });
    const pid_t writer = spawn([&] { return raw_writer(ab[0], count, size, ready, gate); });
    for (int fd : {ab[0], ab[1], bc[0], bc[1]})
        ::close(fd);
    (void)ready.receive();
    const auto t0 = gate.open(1);
    const auto line = report.receive();
    reap(writer);
    reap(reader);
    stop(relayer);
    return rate_of({line}, t0, count, size);
}

// Ping-pong: one record out and back, `rounds` times; latencies in ns.
std::vector<double> raw_round_trips(std::size_t rounds, std::size_t size, bool through_relay)
{
    report_pipe report;
    int ab[2], bc[2];
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, ab);
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, bc);
    const int echo_fd = through_relay ? bc[1] : ab[1];
    const pid_t echo = spawn([&] {
        std::vector<char> buffer(size + 4);
        for (std::size_t i = 0; i < rounds; ++i) {
            std::size_t got = 0;
            while (got < size + 4) {
                const auto n = ::read(echo_fd, buffer.data() + got, size + 4 - got);
                if (n <= 0)
                    return 4;
                got += static_cast<std::size_t>(n);
            }
            write_all(echo_fd, buffer.data(), size + 4);
        }
        return 0;
    });
    pid_t relayer = 0;
    if (through_relay)
        relayer = spawn([&] { return relay(ab[1], bc[0]); });
    const pid_t client = spawn([&] {
        std::vector<char> buffer(size + 4, 'p');
        std::string line;
        for (std::size_t i = 0; i < rounds; ++i) {
            const auto start = clock_type::now();
            write_all(ab[0], buffer.data(), size + 4);
            std::size_t got = 0;
            while (got < size + 4) {
                const auto n = ::read(ab[0], buffer.data() + got, size + 4 - got);
                if (n <= 0)
                    return 4;
                got += static_cast<std::size_t>(n);
            }
            line += ns_since(start);
        }
        report.send(line + "\n");
        return 0;
    });
    for (int fd : {ab[0], ab[1], bc[0], bc[1]})
        ::close(fd);
    const auto line = report.receive();
    reap(client);
    reap(echo);
    stop(relayer);
    return numbers_of(line);
}

// ---- slotbus -----------------------------------------------------------------------------------

struct host_process {
    pid_t pid = 0;
    std::string socket;
    std::filesystem::path dir;
    bool ready = false; ///< it said "ready on"

    /// slotbusd with its default limits on a socket of its own, plus `args`,
    /// started through `launcher` (e.g. `ip netns exec NS`) when one is given.
    explicit host_process(const std::string& tag = "", const std::vector<std::string>& args = {},
                          const std::vector<std::string>& launcher = {})
    {
        dir = std::filesystem::temp_directory_path() /
              ("slotbus-bench-" + std::to_string(::getpid()) + tag);
        std::filesystem::create_directories(dir);
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all); // as slotbusd wants
        socket = (dir / "bus.sock").string();
        std::vector<std::string> words = launcher;
        for (const auto& w : {std::string(SLOTBUSD_PATH), std::string("--socket"), socket})
            words.push_back(w);
        words.insert(words.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& w : words)
            argv.push_back(w.data());
        argv.push_back(nullptr);
        const auto log = (dir / "host.log").string();
        int out[2];
        (void)::pipe(out);
        std::fflush(nullptr);
        pid = ::fork();
        if (pid == 0) {
            ::dup2(out[1], 1);
            ::close(out[0]);
            const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(err, 2); // the host's log is not the report; it is shown if a link fails
            ::execvp(argv[0], argv.data()); // a launcher is found on the PATH
            ::_exit(127);
        }
        ::close(out[1]);
        std::string seen;
        char c;
        while (seen.find("ready on") == std::string::npos && ::read(out[0], &c, 1) == 1)
            seen += c;
        ready = seen.find("ready on") != std::string::npos;
        ::close(out[0]);
    }
    host_process(const host_process&) = delete;
    host_process& operator=(const host_process&) = delete;

    std::string log() const
    {
        std::ifstream in(dir / "host.log");
        return {std::istreambuf_iterator<char>(in), {}};
    }
    ~host_process()
    {
        ::kill(pid, SIGTERM);
        reap(pid);
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }

    // Peak resident memory (KiB) and CPU time (ms) so far.
    std::pair<long, long> usage() const
    {
        long hwm = 0;
        std::ifstream status("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(status, line);)
            if (line.rfind("VmHWM:", 0) == 0)
                hwm = std::stol(line.substr(6));
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), {});
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string field;
        long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && fields >> field; ++i) {
            if (i == 14)
                utime = std::stol(field);
            if (i == 15)
                stime = std::stol(field);
        }
        return {hwm, (utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK)};
    }
};

// The web view open and tailing: the web plugin beside the host, and a
// "browser" that reads the live tail of ** as it comes and fetches the
// page's JSON every second, as the page does.
struct web_view {
    pid_t plugin = 0, viewer = 0;
    bool up = false;

    explicit web_view(const host_process& host)
    {
        const auto port_file = (host.dir / "web.port").string();
        std::fflush(nullptr);
        plugin = ::fork();
        if (plugin == 0) {
            ::setenv("SLOTBUS_ADDRESS", host.socket.c_str(), 1);
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execl(SLOTBUS_WEB_PATH, SLOTBUS_WEB_PATH, "--port", "0", "--port-file",
                    port_file.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // Generous deadlines: CI runs this beside builds and other suites on
        // two cores, where a plugin's start can take seconds.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        unsigned port = 0;
        while (port == 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            std::ifstream(port_file) >> port;
        }
        if (port == 0)
            return;
        viewer = spawn([port] { return view(static_cast<std::uint16_t>(port)); });
        // Until its tail's subscription stands, the host copies nothing to it.
        while (!up && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            slotbus::connection bus;
            bus.connect(host.socket);
            for (const auto& v : slotbus::list_slots(bus, "slotbus/web"))
                up |= !v.at("subscriptions").as_array().empty();
        }
    }
    web_view(const web_view&) = delete;
    web_view& operator=(const web_view&) = delete;
    ~web_view()
    {
        for (pid_t p : {viewer, plugin})
            if (p > 0) {
                ::kill(p, SIGKILL);
                reap(p);
            }
    }

    static int view(std::uint16_t port)
    {
        namespace asio = boost::asio;
        using tcp = asio::ip::tcp;
        asio::io_context io;
        const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
        tcp::socket tail(io);
        tail.connect(at);
        asio::write(tail, asio::buffer(std::string(
                              "GET /events?pattern=** HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
        auto next_look = std::chrono::steady_clock::now();
        char buffer[65536];
        for (;;) {
            if (std::chrono::steady_clock::now() >= next_look) {
                tcp::socket page(io);
                page.connect(at);
                asio::write(page,
                            asio::buffer(std::string("GET /api/view HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                     "Connection: close\r\n\r\n")));
                boost::system::error_code ec;
                while (!ec)
                    page.read_some(asio::buffer(buffer), ec);
                next_look += std::chrono::seconds(1);
            }
            pollfd p{tail.native_handle(), POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) {
                boost::system::error_code ec;
                tail.read_some(asio::buffer(buffer), ec);
                if (ec)
                    return 1;
            }
        }
    }
};

// The typed scenario's event: a described struct of five fields.
struct tick {
    static constexpr std::string_view event_type = "bench.tick";
    std::uint64_t seq = 0;
    std::string symbol;
    double price = 0;
    std::int64_t quantity = 0;
    bool buy = false;
};
BOOST_DESCRIBE_STRUCT(tick, (), (seq, symbol, price, quantity, buy))

// One slotbus throughput scenario: who writes where, who reads.
struct bus_scenario {
    const char* name;
    std::size_t writers = 1;
    std::size_t readers = 1;
    bool fan_out = false;            ///< readers subscribe to a topic instead of owning the name
    bool typed = false;              ///< publish `tick`s, receive them converted by a subscriber
    bool each = false;               ///< a handler per write (async_write), not per batch of 64
    const char* write_to = nullptr;  ///< the writers' name, when not the scenario's usual one
    const char* read_from = nullptr; ///< the reader's slot, likewise
    std::vector<std::string> host_args{}; ///< slotbusd's options beyond its defaults
    std::size_t window_bytes = 8u << 20;  ///< what a writer keeps unacknowledged at most
};

// A writer: connects, opens, says it is ready, waits for the start signal,
// then writes `count` records pipelined (at most `window` unacknowledged:
// 4096 records, fewer when they would be over 8 MiB, as a writer that minds
// its memory would; the SDK keeps what the host has no room for yet).
int slotbus_writer(const std::string& socket, const bus_scenario& s, std::size_t count,
                   std::size_t size, const report_pipe& ready, const start_gate& gate)
{
    // A connection on its own context: the setup is synchronous, the writes
    // are async and run by bus.run().
    slotbus::connection bus({"bench-writer", 256, ""});
    const std::string target = s.write_to  ? s.write_to
                               : s.typed   ? "bench/typed/ticks"
                               : s.fan_out ? "bench/fan/out"
                                           : "bench/inbox";
    const std::string record(size, 'w');
    std::optional<slotbus::publisher> pub;
    slotbus::client_slot slot;
    std::size_t sent = 0, acked = 0;
    int status = 0;
    const std::size_t batch = std::clamp<std::size_t>(s.window_bytes / (size + 8) / 2, 1, 64);
    const std::vector<asio::const_buffer> records(batch, asio::buffer(record));
    const std::size_t window =
        std::clamp<std::size_t>(s.window_bytes / (size + 8), 2 * batch, 4096);
    std::function<void()> pump = [&] {
        auto on_ack = [&](std::size_t n) {
            return [&, n](boost::system::error_code ec, std::uint32_t) {
                if (ec)
                    status = 5;
                if ((acked += n) == count)
                    bus.stop(); // run() returns; the destructor closes
                else if (sent - acked < window / 2)
                    pump();
            };
        };
        while (sent < count && sent - acked < window) {
            const auto n = pub || s.each ? 1 : std::min(batch, count - sent);
            sent += n;
            if (pub)
                pub->async_publish(target, tick{sent, "SLTB", 101.25, 7, true}, on_ack(1));
            else if (s.each)
                slot.async_write(asio::buffer(record), on_ack(1));
            else
                slot.async_write_batch(std::span(records).first(n), on_ack(n));
        }
    };
    bus.connect(socket);
    if (s.typed)
        pub.emplace(bus, "bench");
    else
        slot = slotbus::client_slot::open(bus, target);
    if (pub) // its first publish opens the topic: do it before the clock starts
        pub->publish(target, tick{0, "SLTB", 0, 0, false});
    ready.send("ready\n");
    gate.wait();
    pump();
    bus.run();
    return status;
}

// A reader: its slot (or a subscriber's inbox) exists before it says ready;
// it reports how many records it saw and when the last came. It gives up
// after `idle` without a record, so a lost record shows as loss, not a hang.
int slotbus_reader(const std::string& socket, const bus_scenario& s, std::size_t index,
                   std::size_t expected, const report_pipe& report, const report_pipe& ready)
{
    asio::io_context io;
    slotbus::connection bus(io.get_executor(), {"bench-reader", 1024, ""});
    auto work = asio::make_work_guard(io); // before run(), or run() may find nothing to do
    std::thread runner([&] { io.run(); });
    bus.connect(socket);
    std::atomic<std::size_t> seen{0};
    std::atomic<std::int64_t> last{0};
    std::promise<void> done;
    std::atomic<bool> finished{false};
    auto finish = [&] {
        if (!finished.exchange(true))
            done.set_value();
    };
    std::optional<slotbus::server_slot> slot;
    std::optional<slotbus::subscriber> sub;
    slotbus::subscription topic;
    std::function<void()> next = [&] {
        slot->async_read_records(4096,
                                 [&](boost::system::error_code ec, slotbus::record_batch records) {
                                     if (ec)
                                         return finish();
                                     last = now_ns();
                                     if ((seen += records.size()) >= expected)
                                         return finish();
                                     next();
                                 });
    };
    if (s.typed) {
        sub.emplace(bus, "bench/typed/inbox");
        topic = sub->on<tick>("bench/typed/**", [&](const tick& t) {
            if (t.seq == 0)
                return; // the writer's warm-up
            last = now_ns();
            if (++seen >= expected)
                finish();
        });
        asio::post(io, [&] { sub->async_run([&](boost::system::error_code) { finish(); }); });
    } else {
        slot.emplace(slotbus::server_slot::create(bus, s.read_from ? s.read_from
                                                       : s.fan_out
                                                           ? "bench/sub/" + std::to_string(index)
                                                           : "bench/inbox"));
        if (s.fan_out)
            topic = slot->subscribe("bench/fan/**");
        asio::post(io, next);
    }
    ready.send("ready\n");
    auto future = done.get_future();
    std::size_t progress = 0;
    auto quiet_since = clock_type::now();
    while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (seen != progress) {
            progress = seen;
            quiet_since = clock_type::now();
        } else if (clock_type::now() - quiet_since > std::chrono::seconds(5)) {
            break; // nothing for 5 s: what did not come is lost
        }
    }
    report.send(seen_line(seen, last));
    work.reset();
    asio::post(io, [&] {
        if (sub)
            sub->stop();
        bus.close();
    });
    runner.join();
    return 0;
}

// Runs the CLI against `host`: its output's bytes (-1 when it failed), and ms.
std::pair<long, double> timed_cli(const host_process& host, const std::string& words)
{
    const auto out = host.dir / "cli.out";
    const std::string command = std::string(SLOTBUS_CLI_PATH) + " --address '" + host.socket +
                                "' " + words + " > '" + out.string() + "' 2>&1";
    const auto start = clock_type::now();
    const int status = std::system(command.c_str());
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(out, ec);
    return {status == 0 && !ec ? static_cast<long>(bytes) : -1, ms};
}

// Of the writes the host took, the share that came by lane (`stats --json`).
double lane_share(const host_process& host)
{
    if (timed_cli(host, "stats --json").first <= 0)
        return 0;
    std::ifstream in(host.dir / "cli.out");
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    boost::system::error_code ec;
    const auto stats = boost::json::parse(text, ec);
    if (ec || !stats.is_object())
        return 0;
    const auto* writes = stats.as_object().if_contains("writes");
    const auto* lane = stats.as_object().if_contains("lane_writes");
    if (!writes || !lane || writes->to_number<double>() <= 0)
        return 0;
    return lane->to_number<double>() / writes->to_number<double>();
}

struct slotbus_result {
    rate r;
    long host_kib = 0;
    long host_cpu_ms = 0;
    double lane_share = 0; ///< of the writes, those that came by lane (the host's count)
};

// Readers on the host at `read_socket`, writers on the one at `write_socket`
// (the same host but in the cross-host scenario).
rate bus_throughput(const bus_scenario& s, const std::string& write_socket,
                    const std::string& read_socket, std::size_t count, std::size_t size,
                    int* writer_status = nullptr)
{
    report_pipe report, ready;
    start_gate gate;
    std::vector<pid_t> readers, writers;
    for (std::size_t i = 0; i < s.readers; ++i)
        readers.push_back(
            spawn([&] { return slotbus_reader(read_socket, s, i, count, report, ready); }));
    for (std::size_t i = 0; i < s.readers; ++i)
        (void)ready.receive(); // every slot and subscription exists
    const std::size_t per_writer = count / s.writers;
    for (std::size_t i = 0; i < s.writers; ++i)
        writers.push_back(
            spawn([&] { return slotbus_writer(write_socket, s, per_writer, size, ready, gate); }));
    for (std::size_t i = 0; i < s.writers; ++i)
        (void)ready.receive();
    const auto t0 = gate.open(s.writers);
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < s.readers; ++i)
        lines.push_back(report.receive());
    int status = 0;
    for (auto pid : writers)
        status = std::max(status, reap(pid));
    for (auto pid : readers)
        reap(pid);
    if (writer_status)
        *writer_status = status;
    return rate_of(lines, t0, per_writer * s.writers * s.readers, size);
}

slotbus_result slotbus_throughput(const bus_scenario& s, std::size_t count, std::size_t size,
                                  bool web_open = false)
{
    host_process host("", s.host_args);
    std::optional<web_view> web;
    if (web_open) {
        web.emplace(host);
        if (!web->up)
            throw std::runtime_error("the web view did not come up");
    }
    slotbus_result out;
    out.r = bus_throughput(s, host.socket, host.socket, count, size);
    std::tie(out.host_kib, out.host_cpu_ms) = host.usage();
    out.lane_share = lane_share(host);
    return out;
}

rate& rate_in(rate& r)
{
    return r;
}
rate& rate_in(slotbus_result& r)
{
    return r.r;
}

// The median of runs by records/s (one unlucky schedule on a shared 2-core
// machine moves a single run a lot); a loss in any run is kept, never hidden.
template <class Run> Run median_of(std::vector<Run> runs)
{
    std::uint64_t lost = 0;
    for (auto& run : runs)
        lost = std::max(lost, rate_in(run).lost);
    std::sort(runs.begin(), runs.end(),
              [](auto& a, auto& b) { return rate_in(a).records_per_s < rate_in(b).records_per_s; });
    auto median = runs[runs.size() / 2];
    rate_in(median).lost = lost;
    return median;
}

double median_of(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Runs a measurement `repeat` times and keeps the median run.
template <class Measure> auto median_run(std::size_t repeat, Measure measure)
{
    std::vector<decltype(measure())> runs;
    for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i)
        runs.push_back(measure());
    return median_of(std::move(runs));
}

/// A slotbus scenario's median run, and the median of its runs' ratios to
/// the raw two-hop run made just before each.
struct paired_result {
    slotbus_result median;
    double ratio = 0;
};

paired_result paired_runs(std::size_t repeat, const bus_scenario& s, std::size_t n,
                          std::size_t size, std::vector<rate>& raw_two_runs)
{
    std::vector<slotbus_result> runs;
    std::vector<double> ratios;
    for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) {
        raw_two_runs.push_back(raw_one_to_one(n, size, true));
        runs.push_back(slotbus_throughput(s, n, size));
        ratios.push_back(runs.back().r.records_per_s / raw_two_runs.back().records_per_s);
    }
    return {median_of(std::move(runs)), median_of(std::move(ratios))};
}

/// The size of one `tick` envelope as the typed scenario publishes it.
std::size_t tick_envelope_size()
{
    // As a publisher writes it: no envelope, the data written straight out.
    std::string record;
    slotbus::detail::begin_new_event(record, "/clients/bench", tick::event_type,
                                     "bench\\typed\\ticks");
    slotbus::detail::append_data(record, tick{123456, "SLTB", 101.25, 7, true});
    return record.size() + 1; // and its closing brace
}

std::vector<double> slotbus_round_trips(std::size_t rounds, std::size_t size,
                                        const std::vector<std::string>& host_args = {})
{
    host_process host("", host_args);
    report_pipe report, ready;
    const pid_t echo = spawn([&] {
        slotbus::connection bus;
        bus.connect(host.socket);
        auto in = slotbus::server_slot::create(bus, "rt/server");
        ready.send("ready\n");
        slotbus::client_slot out;
        for (std::size_t i = 0; i < rounds; ++i) {
            auto r = in.read();
            if (!out.is_open())
                out = slotbus::client_slot::open(bus, "rt/client");
            if (i + 1 < rounds)
                out.async_write(asio::buffer(r), asio::detached); // nobody waits for its result
            else
                (void)out.write(asio::buffer(r)); // the last one must leave before the process
        }
        return 0;
    });
    (void)ready.receive();
    const pid_t client = spawn([&] {
        slotbus::connection bus;
        bus.connect(host.socket);
        auto in = slotbus::server_slot::create(bus, "rt/client");
        auto out = slotbus::client_slot::open(bus, "rt/server");
        const std::string record(size, 'p');
        std::string line;
        for (std::size_t i = 0; i < rounds; ++i) {
            const auto start = clock_type::now();
            out.async_write(asio::buffer(record), asio::detached);
            (void)in.read();
            line += ns_since(start);
        }
        report.send(line + "\n");
        return 0;
    });
    const auto line = report.receive();
    reap(client);
    reap(echo);
    return numbers_of(line);
}

// ---- the shared-memory lane --------------------------------------------------------------------

// The shared-memory baseline: the least a lane can cost. The writer copies each
// record into a ring of fixed cells in a memfd both processes map (sized as a
// lane: 8 MiB, or twice the record), the reader copies it out; either side
// sleeps on an eventfd only when the ring is empty or full, and the other
// wakes it then. Its counters live in the shared page, as a baseline's may
// (a lane keeps them in the host).
struct shm_ring {
    struct control {
        std::atomic<std::uint64_t> head{0}, tail{0}; ///< records written, records read
        std::atomic<bool> reader_sleeps{false}, writer_sleeps{false};
    };
    std::size_t cell = 0, cells = 0, mapped = 0;
    void* base = nullptr;
    control* ctl = nullptr;
    char* data = nullptr;
    int data_ready = -1, room_ready = -1;

    explicit shm_ring(std::size_t size)
    {
        cell = std::max<std::size_t>(size, 64);
        const std::size_t bytes = std::bit_ceil(std::max<std::size_t>(8u << 20, 2 * cell));
        cells = bytes / cell;
        mapped = 4096 + cells * cell;
        const int fd = ::memfd_create("slotbus-bench-ring", MFD_CLOEXEC);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(mapped)) != 0)
            throw std::runtime_error("memfd for the shared-memory baseline");
        base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (base == MAP_FAILED)
            throw std::runtime_error("mmap for the shared-memory baseline");
        ctl = new (base) control;
        data = static_cast<char*>(base) + 4096;
        data_ready = ::eventfd(0, EFD_CLOEXEC);
        room_ready = ::eventfd(0, EFD_CLOEXEC);
    }
    shm_ring(const shm_ring&) = delete;
    shm_ring& operator=(const shm_ring&) = delete;
    ~shm_ring()
    {
        ::munmap(base, mapped);
        ::close(data_ready);
        ::close(room_ready);
    }

    // Sleeps until `ready()`; `sleeps` tells the other side to wake this one.
    template <class Ready> static void wait(std::atomic<bool>& sleeps, int wake, Ready ready)
    {
        while (!ready()) {
            sleeps = true;
            if (ready()) { // it came while the flag was going up
                sleeps = false;
                return;
            }
            std::uint64_t n;
            (void)::read(wake, &n, sizeof n);
        }
    }
    static void wake(std::atomic<bool>& sleeps, int fd)
    {
        if (sleeps.exchange(false)) {
            const std::uint64_t one = 1;
            (void)::write(fd, &one, sizeof one);
        }
    }

    void write(const char* record, std::size_t size)
    {
        const auto head = ctl->head.load();
        wait(ctl->writer_sleeps, room_ready, [&] { return head - ctl->tail.load() < cells; });
        std::memcpy(data + head % cells * cell, record, size);
        ctl->head = head + 1;
        wake(ctl->reader_sleeps, data_ready);
    }
    void read(char* out, std::size_t size)
    {
        const auto tail = ctl->tail.load();
        wait(ctl->reader_sleeps, data_ready, [&] { return ctl->head.load() != tail; });
        std::memcpy(out, data + tail % cells * cell, size);
        ctl->tail = tail + 1;
        wake(ctl->writer_sleeps, room_ready);
    }
};

rate raw_shm_one_to_one(std::size_t count, std::size_t size)
{
    report_pipe report, ready;
    start_gate gate;
    shm_ring ring(size);
    const pid_t reader = spawn([&] {
        std::vector<char> out(size);
        for (std::size_t i = 0; i < count; ++i)
            ring.read(out.data(), size);
        report.send(seen_line(count, now_ns()));
        return 0;
    });
    const pid_t writer = spawn([&] {
        const std::string record(size, 'r');
        ready.send("ready\n");
        gate.wait();
        for (std::size_t i = 0; i < count; ++i)
            ring.write(record.data(), size);
        return 0;
    });
    (void)ready.receive();
    const auto t0 = gate.open(1);
    const auto line = report.receive();
    reap(writer);
    reap(reader);
    return rate_of({line}, t0, count, size);
}

// slotbusd with every record by lane, or every record by socket.
std::vector<std::string> all_by_lane()
{
    return {"--lane-threshold", "1"};
}
std::vector<std::string> all_by_socket()
{
    return {"--lane-threshold", "0"};
}

// ---- past one LAN: the NATS bridge
// ---------------------------------------------------------------

// A nats-server on a free loopback port, for the bridged scenario and its baseline.
struct nats_process {
    pid_t pid = 0;
    std::string url;
    bool up = false;
    std::string why;

    nats_process()
    {
        if (::access("/usr/sbin/nats-server", X_OK) != 0) {
            why = "no /usr/sbin/nats-server (Debian's nats-server package)";
            return;
        }
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        ::close(fd);
        const auto port = std::to_string(ntohs(a.sin_port));
        url = "nats://127.0.0.1:" + port;
        std::fflush(nullptr);
        pid = ::fork();
        if (pid == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execl("/usr/sbin/nats-server", "nats-server", "-a", "127.0.0.1", "-p", port.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // Up when it takes a connection.
        for (int i = 0; i < 100 && !up; ++i) {
            natsConnection* nc = nullptr;
            up = natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK;
            natsConnection_Destroy(nc);
            if (!up)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (!up)
            why = "nats-server did not start";
    }
    nats_process(const nats_process&) = delete;
    nats_process& operator=(const nats_process&) = delete;
    ~nats_process()
    {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            reap(pid);
        }
    }
};

// The baseline: a libnats publisher and subscriber, each its own process,
// records on one subject (what the bridges do between themselves).
int nats_subscriber(const std::string& url, std::size_t expected, const report_pipe& report,
                    const report_pipe& ready)
{
    struct counts {
        std::atomic<std::size_t> seen{0};
        std::atomic<std::int64_t> last{0};
    } c;
    natsConnection* nc = nullptr;
    natsSubscription* sub = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK)
        return 1;
    natsConnection_Subscribe(
        &sub, nc, "bench.fan.x",
        [](natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
            auto* k = static_cast<counts*>(closure);
            k->last = now_ns();
            ++k->seen;
            natsMsg_Destroy(m);
        },
        &c);
    natsSubscription_SetPendingLimits(sub, -1, -1); // as the bridge: NATS keeps what it must
    natsConnection_Flush(nc);
    ready.send("ready\n");
    std::size_t progress = 0;
    auto quiet_since = clock_type::now();
    while (c.seen < expected) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (c.seen != progress) {
            progress = c.seen;
            quiet_since = clock_type::now();
        } else if (clock_type::now() - quiet_since > std::chrono::seconds(5)) {
            break;
        }
    }
    report.send(seen_line(c.seen, c.last));
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return 0;
}

int nats_publisher(const std::string& url, std::size_t count, std::size_t size,
                   const report_pipe& ready, const start_gate& gate)
{
    natsConnection* nc = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK)
        return 1;
    const std::string record(size, 'n');
    ready.send("ready\n");
    gate.wait();
    for (std::size_t i = 0; i < count; ++i)
        natsConnection_Publish(nc, "bench.fan.x", record.data(), static_cast<int>(record.size()));
    natsConnection_Flush(nc);
    natsConnection_Destroy(nc);
    return 0;
}

rate nats_alone(const nats_process& nats, std::size_t count, std::size_t size)
{
    report_pipe report, ready;
    start_gate gate;
    const pid_t sub = spawn([&] { return nats_subscriber(nats.url, count, report, ready); });
    (void)ready.receive();
    const pid_t pub = spawn([&] { return nats_publisher(nats.url, count, size, ready, gate); });
    (void)ready.receive();
    const auto t0 = gate.open(1);
    std::vector<std::string> lines{report.receive()};
    reap(pub);
    reap(sub);
    return rate_of(lines, t0, count, size);
}

// Two hosts, each running the bridge as its plugin: alpha exports bench/fan/**
// (core), beta imports bench.fan.>; a writer on alpha, a subscriber on beta.
struct bridged_hosts {
    std::filesystem::path dir;
    std::unique_ptr<host_process> alpha, beta;
    bool up = false;

    explicit bridged_hosts(const nats_process& nats)
    {
        dir = std::filesystem::temp_directory_path() /
              ("slotbus-bench-bridge-" + std::to_string(::getpid()));
        auto plugins = [&](const std::string& name, const std::string& routes) {
            const auto d = dir / name, config = dir / (name + ".json");
            std::filesystem::create_directories(d);
            std::ofstream(config) << R"({"servers": [")" << nats.url << R"("], "origin": ")" << name
                                  << R"(", )" << routes << "}";
            std::ofstream(d / "nats-bridge.json")
                << R"({"name": "nats-bridge", "executable": ")" << SLOTBUS_NATS_BRIDGE_PATH
                << R"(", "args": ["--config", ")" << config.string()
                << R"("], "permissions": [{"allow": ["create"], "names": ["slotbus/nats-bridge/**"]},
                   {"allow": ["read", "write"], "names": ["bench/**"]},
                   {"allow": ["write"], "names": ["slotbus/nats-bridge/**"]}]})";
            return d.string();
        };
        alpha = std::make_unique<host_process>(
            "-alpha",
            std::vector<std::string>{"--plugins-dir",
                                     plugins("alpha", R"("exports": [{"from": "bench/fan/**"}])")});
        beta = std::make_unique<host_process>(
            "-beta",
            std::vector<std::string>{
                "--plugins-dir",
                plugins("beta",
                        R"("core_pending": 16777216, "imports": [{"subject": "bench.fan.>"}])")});
        // Ready when both bridges are: their hosts log it.
        for (int i = 0; i < 200 && !up; ++i) {
            auto logged = [](const host_process& h, const char* what) {
                std::ifstream in(h.dir / "host.log");
                std::stringstream text;
                text << in.rdbuf();
                return text.str().find(what) != std::string::npos;
            };
            up = alpha->ready && beta->ready && logged(*alpha, "connected to") &&
                 logged(*beta, "importing bench.fan.>");
            if (!up)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    ~bridged_hosts()
    {
        alpha.reset();
        beta.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

slotbus_result bridged(const bridged_hosts& hosts, std::size_t count, std::size_t size)
{
    const bus_scenario s{"nats-bridge", 1, 1, true, false, false, "bench\\fan\\x"};
    slotbus_result out;
    out.r = bus_throughput(s, hosts.alpha->socket, hosts.beta->socket, count, size);
    const auto [ka, ca] = hosts.alpha->usage();
    const auto [kb, cb] = hosts.beta->usage();
    out.host_kib = ka + kb;
    out.host_cpu_ms = ca + cb;
    return out;
}

// ---- what the host keeps per slot -----------------------------------------------------------

/// Resident memory of a process now, in KiB.
long resident_kib(pid_t pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    return 0;
}

struct memory_result {
    double host_bytes_per_slot = 0; ///< resident growth over the slots, each with a subscription
    double ls_ms = 0, stats_ms = 0; ///< `slotbus ls` and `slotbus stats` at that many slots
    bool cli_ok = false;            ///< both printed what they should
};

// One client makes `slots` slots, each subscribed to its own topic (a small
// byte budget, so the host's limits allow that many); the host's resident
// growth, over the slots.
memory_result host_memory(std::size_t slots)
{
    const auto many = std::to_string(2 * slots + 64);
    host_process host("-memory",
                      {"--max-slots", many, "--max-handles", many, "--max-connection-subscriptions",
                       many, "--max-total-subscriptions", many,
                       // budgets are caps, not memory: each slot's is at least 1 MiB
                       "--max-connection-budget", "1000000000000000", "--max-total-budget",
                       "1000000000000000"});
    report_pipe ready, made;
    start_gate go, done;
    const pid_t maker = spawn([&] {
        slotbus::connection bus;
        bus.connect(host.socket);
        ready.send("ready\n");
        go.wait();
        std::vector<slotbus::server_slot> owned;
        std::vector<slotbus::subscription> subscriptions;
        owned.reserve(slots);
        subscriptions.reserve(slots);
        try {
            for (std::size_t i = 0; i < slots; ++i) {
                owned.push_back(slotbus::server_slot::create(bus, "mem/slot/" + std::to_string(i)));
                subscriptions.push_back(owned.back().subscribe("mem/topic/" + std::to_string(i)));
            }
        } catch (const std::exception& e) {
            made.send(std::string("failed: ") + e.what() + "\n");
            throw;
        }
        made.send("made\n");
        done.wait(); // the slots stand while the parent measures
        return 0;
    });
    (void)ready.receive();
    const long before = resident_kib(host.pid);
    go.open(1);
    if (const auto said = made.receive(); said != "made") {
        reap(maker);
        throw std::runtime_error("the memory scenario's slots: " + said);
    }
    memory_result out;
    out.host_bytes_per_slot =
        static_cast<double>(resident_kib(host.pid) - before) * 1024 / static_cast<double>(slots);
    const auto [ls_bytes, ls_ms] = timed_cli(host, "ls");
    const auto [stats_bytes, stats_ms] = timed_cli(host, "stats");
    out.ls_ms = ls_ms;
    out.stats_ms = stats_ms;
    // ls prints a line per slot, at least its name.
    out.cli_ok = ls_bytes >= static_cast<long>(slots) * 10 && stats_bytes > 0;
    done.open(1);
    reap(maker);
    return out;
}

// The baseline: nats-server's resident growth over `subscriptions` core NATS
// subscriptions, each to its own subject, from one libnats connection.
double nats_bytes_per_subscription(const nats_process& nats, std::size_t subscriptions)
{
    natsConnection* nc = nullptr;
    if (natsConnection_ConnectTo(&nc, nats.url.c_str()) != NATS_OK)
        return 0;
    natsConnection_Flush(nc);
    const long before = resident_kib(nats.pid);
    std::vector<natsSubscription*> subs(subscriptions, nullptr);
    for (std::size_t i = 0; i < subscriptions; ++i)
        natsConnection_SubscribeSync(&subs[i], nc, ("mem.topic." + std::to_string(i)).c_str());
    natsConnection_Flush(nc);
    const long after = resident_kib(nats.pid);
    for (auto* sub : subs)
        natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return static_cast<double>(after - before) * 1024 / static_cast<double>(subscriptions);
}

// ---- cross-host ---------------------------------------------------------------------------------

int quiet(const std::string& command)
{
    return std::system((command + " >/dev/null 2>&1").c_str());
}

// The first line a command prints (its exit status in `status`).
std::string first_line_of(const std::string& command, int& status)
{
    std::string out;
    FILE* p = ::popen((command + " 2>/dev/null").c_str(), "r");
    if (!p) {
        status = -1;
        return out;
    }
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, p))
        out += buffer;
    status = ::pclose(p);
    return out.substr(0, out.find('\n'));
}

// What a signal must undo: the namespaces (a namespace outlives the bench
// otherwise) and the hosts in them. Written before the handler is set.
struct cleanup_on_signal {
    static inline pid_t owner = 0;
    static inline char ip[64] = "";
    static inline char ns[2][64] = {"", ""};
    static inline pid_t hosts[2] = {0, 0};
    static inline char dirs[3][256] = {"", "", ""}; // the keys; each host's socket and log

    static void handler(int sig)
    {
        if (::getpid() == owner) { // a child has nothing of its own to undo
            for (pid_t h : hosts)
                if (h > 0)
                    ::kill(h, SIGKILL);
            for (const char* name : ns) {
                if (!*name)
                    continue;
                const pid_t pid = ::fork();
                if (pid == 0) {
                    ::execl(ip, ip, "netns", "del", name, static_cast<char*>(nullptr));
                    ::_exit(127);
                }
                int status;
                ::waitpid(pid, &status, 0);
            }
            if (*dirs[0] && ::fork() == 0) {
                ::execl("/bin/rm", "rm", "-rf", dirs[0], dirs[1], dirs[2],
                        static_cast<char*>(nullptr));
                ::_exit(127);
            }
        }
        ::signal(sig, SIG_DFL);
        ::raise(sig);
    }
};

// Two hosts' network namespaces joined by one veth pair: A is 198.18.1.1,
// B 198.18.1.2 (198.18.0.0/15 is for benchmarks, RFC 2544). Made here and
// removed here, on failure and on SIGINT/SIGTERM too.
struct veth_pair {
    std::string tag = std::to_string(::getpid());
    std::string ns_a = "sbbench-a" + tag, ns_b = "sbbench-b" + tag;
    std::string veth_a = "sbba" + tag, veth_b = "sbbb" + tag; // IFNAMSIZ: 15 at most
    std::string ip_a = "198.18.1.1", ip_b = "198.18.1.2";
    bool made = false;
    std::string why; ///< when not made

    veth_pair()
    {
        if (::geteuid() != 0 || quiet("ip netns list") != 0) {
            why = "needs root and `ip netns` (iproute2) to make two hosts";
            return;
        }
        remove(); // what a crashed run of the same pid left
        int status = 0;
        const auto ip = first_line_of("command -v ip", status);
        cleanup_on_signal::owner = ::getpid();
        std::snprintf(cleanup_on_signal::ip, sizeof cleanup_on_signal::ip, "%s", ip.c_str());
        std::snprintf(cleanup_on_signal::ns[0], 64, "%s", ns_a.c_str());
        std::snprintf(cleanup_on_signal::ns[1], 64, "%s", ns_b.c_str());
        std::signal(SIGINT, cleanup_on_signal::handler);
        std::signal(SIGTERM, cleanup_on_signal::handler);
        made = quiet("ip netns add " + ns_a) == 0 && quiet("ip netns add " + ns_b) == 0 &&
               quiet("ip link add " + veth_a + " netns " + ns_a + " type veth peer name " + veth_b +
                     " netns " + ns_b) == 0;
        for (const auto& [ns, veth, ip4] : {std::tuple{ns_a, veth_a, ip_a}, {ns_b, veth_b, ip_b}})
            made = made && quiet("ip -n " + ns + " addr add " + ip4 + "/24 dev " + veth) == 0 &&
                   quiet("ip -n " + ns + " link set lo up") == 0 &&
                   quiet("ip -n " + ns + " link set " + veth + " up") == 0;
        if (!made) {
            why = "could not make two network namespaces joined by a veth pair";
            remove();
        }
    }
    ~veth_pair() { remove(); }
    veth_pair(const veth_pair&) = delete;
    veth_pair& operator=(const veth_pair&) = delete;
    void remove() const
    {
        quiet("ip netns del " + ns_a); // the veth pair goes with its namespaces
        quiet("ip netns del " + ns_b);
    }
};

// The calling (single-threaded) process joins a namespace `ip netns add` made.
void enter_netns(const std::string& ns)
{
    const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0)
        throw std::runtime_error("cannot enter network namespace " + ns);
    ::close(fd);
}

void write_private(const std::filesystem::path& path, const std::string& text)
{
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0600); // a policy file must be root's and 0600
}

/// alpha in namespace A and beta in B, linked (the link is up once made).
struct linked_hosts {
    veth_pair net;
    std::filesystem::path dir;
    std::optional<host_process> alpha, beta;
    bool up = false;
    std::string why; ///< when not up

    linked_hosts()
    {
        if (!net.made) {
            why = net.why;
            return;
        }
        dir = std::filesystem::temp_directory_path() /
              ("slotbus-bench-" + std::to_string(::getpid()) + "-keys");
        std::filesystem::create_directories(dir);
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
        const auto own = [](int i, const std::filesystem::path& d) {
            std::snprintf(cleanup_on_signal::dirs[i], 256, "%s", d.c_str());
        };
        own(0, dir);
        const auto base = dir.string().substr(0, dir.string().size() - 5); // as host_process
        own(1, base + "-alpha");                                           // names them
        own(2, base + "-beta");
        std::string fingerprint[2];
        const char* names[2] = {"alpha", "beta"};
        for (int h = 0; h < 2; ++h) {
            int status = 0;
            fingerprint[h] = first_line_of(std::string(SLOTBUS_CLI_PATH) + " keygen --dir " +
                                               (dir / names[h]).string() + " --name " + names[h],
                                           status);
            if (status != 0 || fingerprint[h].rfind("sha256:", 0) != 0) {
                why = "slotbus keygen failed";
                return;
            }
        }
        const std::string port = "47078";
        const std::string ip[2] = {net.ip_a, net.ip_b}, ns[2] = {net.ns_a, net.ns_b};
        for (int h = 0; h < 2; ++h) {
            const int other = 1 - h;
            const auto peers = dir / (std::string(names[h]) + "-peers.json");
            write_private(peers, std::string(R"({"peers": [{"host": ")") + names[other] +
                                     R"(", "address": ")" + ip[other] + ":" + port +
                                     R"(", "fingerprint": ")" + fingerprint[other] + R"("}]})");
            const auto policy = dir / (std::string(names[h]) + "-policy.json");
            write_private(
                policy,
                R"({"rules": [{"host": "*", "allow": ["write"], "names": ["bench\\**"]}]})");
            auto& host = h == 0 ? alpha : beta;
            host.emplace("-" + std::string(names[h]),
                         std::vector<std::string>{"--host-name", names[h], "--host-key",
                                                  (dir / names[h]).string(), "--peers",
                                                  peers.string(), "--link-listen",
                                                  ip[h] + ":" + port, "--policy", policy.string()},
                         std::vector<std::string>{"ip", "netns", "exec", ns[h]});
            cleanup_on_signal::hosts[h] = host->pid;
            if (!host->ready) {
                why = std::string("slotbusd ") + names[h] + " did not start: " + host->log();
                return;
            }
        }
        const auto deadline = clock_type::now() + std::chrono::seconds(15);
        while (!(up = link_up(*alpha, "beta") && link_up(*beta, "alpha")) &&
               clock_type::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50)); // a poll, under a deadline
        if (!up)
            why = "the link did not come up in 15 s; alpha's log:\n" + alpha->log() +
                  "beta's log:\n" + beta->log();
    }
    ~linked_hosts()
    {
        alpha.reset(); // the hosts stop before their namespaces go
        beta.reset();
        cleanup_on_signal::hosts[0] = cleanup_on_signal::hosts[1] = 0;
        cleanup_on_signal::dirs[0][0] = '\0';
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }

    static bool link_up(const host_process& h, const std::string& peer)
    {
        int status = 0;
        const auto text = first_line_of(
            "SLOTBUS_ADDRESS=" + h.socket + " " + SLOTBUS_CLI_PATH + " hosts --json", status);
        boost::system::error_code ec;
        const auto doc = boost::json::parse(text, ec);
        if (status != 0 || ec || !doc.is_object() || !doc.as_object().contains("peers"))
            return false;
        for (const auto& p : doc.at("peers").as_array())
            if (p.at("host").as_string() == peer)
                return p.at("state").as_string() == "up";
        return false;
    }

    /// CPU ms of both hosts so far, and the larger peak KiB.
    std::pair<long, long> usage() const
    {
        const auto [ka, ma] = alpha->usage();
        const auto [kb, mb] = beta->usage();
        return {std::max(ka, kb), ma + mb};
    }
};

namespace ssl = asio::ssl;
using asio::ip::tcp;

// TLS 1.3 with the hosts' own Ed25519 keys, both ends proving theirs as a
// link does; who the peer is does not matter to a baseline.
ssl::context baseline_tls(const std::filesystem::path& key_dir)
{
    ssl::context ctx(ssl::context::tls);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
    ctx.use_certificate_chain_file((key_dir / "host.pem").string());
    ctx.use_private_key_file((key_dir / "host.key").string(), ssl::context::pem);
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    ctx.set_verify_callback([](bool, ssl::verify_context&) { return true; });
    return ctx;
}

constexpr unsigned short baseline_port = 47079;

// In namespace B: takes one TLS stream, counts `count` frames, reports when
// the last came, and says so to the sender (which then closes).
int tls_receiver(const linked_hosts& net, std::size_t count, const report_pipe& ready,
                 const report_pipe& report)
{
    enter_netns(net.net.ns_b);
    asio::io_context io;
    auto ctx = baseline_tls(net.dir / "beta");
    tcp::acceptor acceptor(io, {asio::ip::make_address(net.net.ip_b), baseline_port});
    ready.send("ready\n");
    ssl::stream<tcp::socket> tls(io, ctx);
    acceptor.accept(tls.next_layer());
    tls.handshake(ssl::stream_base::server);
    const auto seen = count_frames(count, [&](char* p, std::size_t n) -> long {
        boost::system::error_code ec;
        const auto got = tls.read_some(asio::buffer(p, n), ec);
        return ec ? -1 : static_cast<long>(got);
    });
    report.send(seen_line(seen, now_ns()));
    const char done = 'd';
    boost::system::error_code ignored;
    asio::write(tls, asio::buffer(&done, 1), ignored);
    return seen == count ? 0 : 4;
}

// In namespace A: connects to B, then streams `count` frames of `size` in
// 32 KiB writes from the start signal on.
int tls_sender(const linked_hosts& net, std::size_t count, std::size_t size,
               const report_pipe& ready, const start_gate& gate)
{
    enter_netns(net.net.ns_a);
    asio::io_context io;
    auto ctx = baseline_tls(net.dir / "alpha");
    ssl::stream<tcp::socket> tls(io, ctx);
    tls.next_layer().connect({asio::ip::make_address(net.net.ip_b), baseline_port});
    tls.next_layer().set_option(tcp::no_delay(true)); // as the link's
    tls.handshake(ssl::stream_base::client);
    ready.send("ready\n");
    gate.wait();
    send_frames(count, size,
                [&](const std::vector<char>& batch) { asio::write(tls, asio::buffer(batch)); });
    char done = 0;
    boost::system::error_code ec;
    tls.read_some(asio::buffer(&done, 1), ec); // the receiver has them all: closing loses none
    return 0;
}

rate raw_tls(const linked_hosts& net, std::size_t count, std::size_t size)
{
    report_pipe report, ready;
    start_gate gate;
    const pid_t receiver = spawn([&] { return tls_receiver(net, count, ready, report); });
    (void)ready.receive(); // listening
    const pid_t sender = spawn([&] { return tls_sender(net, count, size, ready, gate); });
    (void)ready.receive(); // connected, handshake done
    const auto t0 = gate.open(1);
    const auto line = report.receive();
    reap(sender);
    reap(receiver);
    return rate_of({line}, t0, count, size);
}

/// A writer on alpha to `\\beta\mailslot\bench\x`, a reader of `bench\x` on
/// beta; the hosts' CPU is what this run added.
slotbus_result cross_host(const linked_hosts& net, std::size_t count, std::size_t size)
{
    static const bus_scenario s{
        "cross-host", 1, 1, false, false, false, "\\\\beta\\mailslot\\bench\\x", "bench\\x"};
    const auto before = net.usage();
    int writers = 0;
    slotbus_result out;
    out.r = bus_throughput(s, net.alpha->socket, net.beta->socket, count, size, &writers);
    if (writers != 0)
        std::fprintf(stderr, "slotbus-bench: cross-host: the writer failed (status %d)\n", writers);
    const auto after = net.usage();
    out.host_kib = after.first;
    out.host_cpu_ms = after.second - before.second;
    return out;
}

// ---- report ------------------------------------------------------------------------------------

double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const auto at = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
    return v[at];
}

std::vector<std::size_t> parse_sizes(const std::string& text)
{
    std::vector<std::size_t> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');)
        out.push_back(std::stoul(item));
    return out;
}

} // namespace

// Writes PREFIX.dat, PREFIX-latency.dat and PREFIX.gp and runs gnuplot on
// them: throughput against record size, and the round-trip percentiles, in
// PREFIX.png.
void plot(const std::string& prefix, const boost::json::array& results)
{
    {
        std::ofstream dat(prefix + ".dat"); // one block per scenario, its name first
        for (const char* scenario : {"raw-1hop", "raw-2hop", "1->1", "1->1 each", "1->4", "4->1"}) {
            dat << '"' << scenario << "\"\n";
            for (const auto& v : results) {
                const auto& r = v.as_object();
                if (r.at("scenario").as_string() == scenario)
                    dat << r.at("size").to_number<double>() << ' '
                        << r.at("records_per_s").to_number<double>() << '\n';
            }
            dat << "\n\n";
        }
        std::ofstream latency(prefix + "-latency.dat");
        for (const auto& v : results) {
            const auto& r = v.as_object();
            if (r.contains("p50_us"))
                latency << '"' << r.at("scenario").as_string().c_str() << "\" "
                        << r.at("p50_us").to_number<double>() << ' '
                        << r.at("p99_us").to_number<double>() << ' '
                        << r.at("p999_us").to_number<double>() << '\n';
        }
        std::ofstream gp(prefix + ".gp");
        gp << "set terminal pngcairo size 1200,450 font ',10'\n"
           << "set output '" << prefix << ".png'\n"
           << "set multiplot layout 1,2\n"
           << "set title 'throughput (records/s; median of the runs, 2 cores)'\n"
           << "set logscale xy\nset xlabel 'record size (bytes)'\nset ylabel 'records/s'\n"
           << "set key bottom left\nset grid\n"
           << "plot for [i=0:5] '" << prefix
           << ".dat' index i using 1:2 with linespoints title columnheader(1)\n"
           << "unset logscale\nset title 'round trip, 128 B (us)'\nset xlabel ''\n"
           << "set ylabel 'us'\nset xrange [-0.5:1.5]\nset yrange [0:*]\nset key top left\n"
           << "plot '" << prefix << "-latency.dat' using 0:2:xtic(1) with linespoints title "
           << "'p50', '' using 0:3 with linespoints title 'p99', '' using 0:4 with linespoints "
           << "title 'p99.9'\n"
           << "unset multiplot\n";
    }
    const std::string command = "gnuplot '" + prefix + ".gp'";
    if (std::system(command.c_str()) != 0)
        std::cerr << "slotbus-bench: gnuplot failed or is missing (apt-get install gnuplot-nox); "
                     "the data is in "
                  << prefix << ".dat\n";
}

int main(int argc, char** argv)
{
    std::size_t count = 5'000'000, rounds = 20'000, repeat = 3, cross_count = 0;
    std::vector<std::size_t> sizes{16, 128, 1024, 65536};
    std::vector<std::size_t> lane_sizes{1024, 65536, 1u << 20, 16u << 20}, fan_outs{1, 4, 16, 32},
        memory_slots{1000, 10000, 100000};
    std::size_t lane_bytes = std::size_t{1} << 30; // moved per lane run, whatever the size
    bool json = false, sizes_given = false;
    std::string plot_prefix, only; // --only: one slotbus scenario, for profiling
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--count" && i + 1 < argc)
            count = std::stoul(argv[++i]);
        else if (flag == "--rounds" && i + 1 < argc)
            rounds = std::stoul(argv[++i]);
        else if (flag == "--sizes" && i + 1 < argc) {
            sizes = parse_sizes(argv[++i]);
            sizes_given = true;
        } else if (flag == "--cross-count" && i + 1 < argc)
            cross_count = std::stoul(argv[++i]);
        else if (flag == "--plot" && i + 1 < argc)
            plot_prefix = argv[++i];
        else if (flag == "--lane-sizes" && i + 1 < argc)
            lane_sizes = parse_sizes(argv[++i]);
        else if (flag == "--lane-mib" && i + 1 < argc)
            lane_bytes = std::stoul(argv[++i]) << 20;
        else if (flag == "--fan-outs" && i + 1 < argc)
            fan_outs = parse_sizes(argv[++i]);
        else if (flag == "--memory-slots" && i + 1 < argc)
            memory_slots = parse_sizes(argv[++i]);
        else if (flag == "--only" && i + 1 < argc)
            only = argv[++i];
        else if (flag == "--repeat" && i + 1 < argc)
            repeat = std::stoul(argv[++i]);
        else if (flag == "--json")
            json = true;
        else {
            std::cerr << "usage: slotbus-bench [--count N] [--rounds N] [--sizes 16,128,...] "
                         "[--json] [--plot PREFIX] [--only SCENARIO] [--repeat N] "
                         "[--cross-count N] [--lane-sizes 1024,...] [--lane-mib N] "
                         "[--fan-outs 1,4,...] [--memory-slots 1000,...]\n";
            return 2;
        }
    }
    std::signal(SIGPIPE, SIG_IGN);

    boost::json::array results;
    const bool local = only != "cross-host" && only != "nats-bridge";
    const bool sized = local && only != "lane" && only != "fan-out" && only != "memory";
    if (!json && sized)
        std::printf("%-12s %8s %14s %10s %10s %6s %10s %10s\n", "scenario", "size", "records/s",
                    "MB/s", "vs raw 2h", "lost", "host KiB", "host ms");
    double raw_two_at_128 = 0;
    auto row = [&](const char* name, std::size_t size, std::size_t n, const rate& r, double ratio,
                   long kib, long cpu, const char* ratio_key = "ratio_to_raw_two_hops",
                   double lane_share = -1) {
        if (!json)
            std::printf(
                "%-12s %8zu %14.0f %10.1f %9.1f%% %6llu %10ld %10ld%s\n", name, size,
                r.records_per_s, r.mb_per_s, 100 * ratio, static_cast<unsigned long long>(r.lost),
                kib, cpu,
                lane_share < 0
                    ? ""
                    : ("  " + std::to_string(std::lround(100 * lane_share)) + "% by lane").c_str());
        results.push_back({{"scenario", name},
                           {"size", size},
                           {"records_per_s", r.records_per_s},
                           {"mb_per_s", r.mb_per_s},
                           {ratio_key, ratio},
                           {"host_peak_kib", kib},
                           {"host_cpu_ms", cpu},
                           {"records", n},
                           {"delivered", r.delivered},
                           {"lost", r.lost}});
        if (lane_share >= 0)
            results.back().as_object()["lane_share"] = lane_share;
    };
    // Round-trip percentiles in us, as a table row and a result.
    auto latency_row = [&](const std::string& name, std::size_t size,
                           const std::vector<double>& v) {
        const double p50 = percentile(v, 50) / 1000, p99 = percentile(v, 99) / 1000,
                     p999 = percentile(v, 99.9) / 1000;
        if (!json)
            std::printf("%-12s %8zu %10.1f %10.1f %10.1f\n", name.c_str(), size, p50, p99, p999);
        results.push_back({{"scenario", name},
                           {"size", size},
                           {"p50_us", p50},
                           {"p99_us", p99},
                           {"p999_us", p999},
                           {"rounds", v.size()}});
    };
    const bus_scenario one_to_one{"1->1"}, one_each{"1->1 each", 1, 1, false, false, true},
        fan_out{"1->4", 1, 4, true}, fan_in{"4->1", 4, 1, false};
    for (const auto size : sized ? sizes : std::vector<std::size_t>{}) {
        // Big records: fewer of them, so every size takes about as long.
        const std::size_t n =
            std::max<std::size_t>(1000, count * 128 / std::max<std::size_t>(size, 128)) / 4 * 4;
        const auto one = median_run(repeat, [&] { return raw_one_to_one(n, size, false); });
        std::vector<rate> raw_twos;
        for (std::size_t i = 0; i < repeat; ++i)
            raw_twos.push_back(raw_one_to_one(n, size, true));
        std::vector<std::pair<const bus_scenario*, paired_result>> bus_rows;
        for (const auto* s : {&one_to_one, &one_each, &fan_out, &fan_in})
            if (only.empty() || only == s->name)
                bus_rows.emplace_back(s, paired_runs(repeat, *s, n, size, raw_twos));
        // The raw two-hop row: every raw two-hop run at this size.
        const auto two = median_of(raw_twos);
        if (size == 128)
            raw_two_at_128 = two.records_per_s;
        row("raw-1hop", size, n, one, one.records_per_s / two.records_per_s, 0, 0);
        row("raw-2hop", size, n, two, 1, 0, 0);
        for (const auto& [s, bus] : bus_rows)
            row(s->name, size, n, bus.median.r, bus.ratio, bus.median.host_kib,
                bus.median.host_cpu_ms);
    }
    if (only.empty() || only == "typed") {
        // Typed: the figure that counts is envelopes/s (the target is absolute).
        const std::size_t n = std::max<std::size_t>(1000, count / 4);
        const auto typed = median_run(repeat, [&] {
            return slotbus_throughput({"typed", 1, 1, false, true}, n, tick_envelope_size());
        });
        row("typed 1->1", tick_envelope_size(), n, typed.r,
            raw_two_at_128 > 0 ? typed.r.records_per_s / raw_two_at_128 : 0, typed.host_kib,
            typed.host_cpu_ms);
    }
    if (only.empty() || only == "web") {
        // The web view open and tailing ** against the same 1->1 without it,
        // alternating runs: the ratio is the median of each pair's.
        const std::size_t size = 128, n = std::max<std::size_t>(1000, count) / 4 * 4;
        std::vector<slotbus_result> with;
        std::vector<double> ratios;
        for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) {
            const auto without = slotbus_throughput(one_to_one, n, size);
            with.push_back(slotbus_throughput(one_to_one, n, size, true));
            ratios.push_back(with.back().r.records_per_s / without.r.records_per_s);
        }
        const auto median = median_of(std::move(with));
        row("1->1 web", size, n, median.r, median_of(std::move(ratios)), median.host_kib,
            median.host_cpu_ms);
    }
    const std::size_t rt_size = 128;
    // In chunks, alternating, so both see the machine's same moods.
    const std::size_t chunks = sized ? 4 : 0;
    std::vector<double> raw_rt, bus_rt;
    for (std::size_t i = 0; i < chunks; ++i) {
        const std::size_t part = std::max<std::size_t>(1, rounds / chunks);
        const auto raw = raw_round_trips(part, rt_size, true);
        raw_rt.insert(raw_rt.end(), raw.begin(), raw.end());
        const auto bus = slotbus_round_trips(part, rt_size);
        bus_rt.insert(bus_rt.end(), bus.begin(), bus.end());
    }
    if (!json && chunks)
        std::printf("\n%-12s %8s %10s %10s %10s   (round trip, us)\n", "scenario", "size", "p50",
                    "p99", "p99.9");
    for (auto [name, v] : {std::pair{"raw-2hop", &raw_rt}, std::pair{"slotbus", &bus_rt}})
        if (chunks)
            latency_row(std::string("round-trip-") + name, rt_size, *v);
    if (only.empty() || only == "lane") {
        // The lane (every record by lane) against the socket path (every record
        // by socket, up to its 1 MiB cap) and the two raw baselines, each
        // iteration's runs one after another; ratios to that iteration's raw
        // one-hop socket run, their median.
        if (!json)
            std::printf("\nlane: records by shared memory (--lane-threshold 1) and by socket "
                        "(--lane-threshold 0); raw-shm is a memcpy ring with eventfd wakes\n"
                        "%-12s %8s %14s %10s %10s %6s %10s %10s\n",
                        "scenario", "size", "records/s", "MB/s", "vs raw 1h", "lost", "host KiB",
                        "host ms");
        for (const auto size : lane_sizes) {
            const std::size_t n = std::max<std::size_t>(8, lane_bytes / size) / 4 * 4;
            const bool socket_fits = size <= (1u << 20);
            const std::size_t window = std::max<std::size_t>(4u << 20, 2 * size);
            const bus_scenario by_lane{
                .name = "lane 1->1", .host_args = all_by_lane(), .window_bytes = window},
                by_socket{
                    .name = "socket 1->1", .host_args = all_by_socket(), .window_bytes = window},
                lane_fan{.name = "lane 1->4",
                         .readers = 4,
                         .fan_out = true,
                         .host_args = all_by_lane(),
                         .window_bytes = window},
                socket_fan{.name = "socket 1->4",
                           .readers = 4,
                           .fan_out = true,
                           .host_args = all_by_socket(),
                           .window_bytes = window};
            std::vector<rate> ones, shms;
            std::vector<std::pair<const bus_scenario*, std::vector<slotbus_result>>> runs;
            std::vector<std::vector<double>> ratios;
            for (const auto* s : {&by_lane, &by_socket, &lane_fan, &socket_fan})
                if (socket_fits || s->host_args == all_by_lane())
                    runs.emplace_back(s, std::vector<slotbus_result>{});
            ratios.resize(runs.size() + 1);
            for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) {
                ones.push_back(raw_one_to_one(n, size, false));
                shms.push_back(raw_shm_one_to_one(n, size));
                ratios[0].push_back(shms.back().records_per_s / ones.back().records_per_s);
                for (std::size_t k = 0; k < runs.size(); ++k) {
                    runs[k].second.push_back(slotbus_throughput(*runs[k].first, n, size));
                    ratios[k + 1].push_back(runs[k].second.back().r.records_per_s /
                                            ones.back().records_per_s);
                }
            }
            row("raw-1hop", size, n, median_of(ones), 1, 0, 0, "ratio_to_raw_one_hop");
            row("raw-shm", size, n, median_of(shms), median_of(ratios[0]), 0, 0,
                "ratio_to_raw_one_hop");
            for (std::size_t k = 0; k < runs.size(); ++k) {
                const auto median = median_of(runs[k].second);
                row(runs[k].first->name, size, n, median.r, median_of(ratios[k + 1]),
                    median.host_kib, median.host_cpu_ms, "ratio_to_raw_one_hop", median.lane_share);
            }
        }
        // Round trips at the same sizes: raw one hop, socket path, lane, pooled
        // over `repeat` chunks taken in turn.
        if (!json)
            std::printf("\n%-12s %8s %10s %10s %10s   (round trip, us)\n", "scenario", "size",
                        "p50", "p99", "p99.9");
        for (const auto size : lane_sizes) {
            const std::size_t part = std::clamp<std::size_t>(
                lane_bytes / size / 8 / std::max<std::size_t>(repeat, 1), 8, rounds / 4 + 8);
            std::vector<double> raw_lane_rt, socket_rt, lane_rt;
            for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) {
                const auto raw = raw_round_trips(part, size, false);
                raw_lane_rt.insert(raw_lane_rt.end(), raw.begin(), raw.end());
                if (size <= (1u << 20)) {
                    const auto bus = slotbus_round_trips(part, size, all_by_socket());
                    socket_rt.insert(socket_rt.end(), bus.begin(), bus.end());
                }
                const auto lane = slotbus_round_trips(part, size, all_by_lane());
                lane_rt.insert(lane_rt.end(), lane.begin(), lane.end());
            }
            for (auto [name, v] : {std::pair{"raw-1hop", &raw_lane_rt},
                                   std::pair{"socket", &socket_rt}, std::pair{"lane", &lane_rt}}) {
                if (v->empty())
                    continue;
                latency_row(std::string("round-trip-") + name, size, *v);
            }
        }
    }
    if (only.empty() || only == "fan-out") {
        // Fan-out through a topic at 128 B (the socket path): records delivered
        // per second to every subscriber together, and the host's CPU per
        // delivered record; the ratio is to the 4-subscriber median.
        if (!json)
            std::printf("\nfan-out: 1 writer, N subscribers through a topic\n"
                        "%-12s %8s %14s %10s %10s %6s %10s %10s\n",
                        "scenario", "size", "delivered/s", "MB/s", "vs 1->4", "lost", "host KiB",
                        "host ms");
        std::vector<std::pair<std::string, slotbus_result>> medians;
        double at_four = 0;
        for (const auto subscribers : fan_outs) {
            const std::string name = "fan-out 1->" + std::to_string(subscribers);
            const bus_scenario s{.name = name.c_str(), .readers = subscribers, .fan_out = true};
            const std::size_t n = std::max<std::size_t>(1000, count / subscribers) / 4 * 4;
            auto median = median_run(repeat, [&] { return slotbus_throughput(s, n, 128); });
            if (subscribers == 4)
                at_four = median.r.records_per_s;
            medians.emplace_back(name, median);
        }
        for (const auto& [name, m] : medians)
            row(name.c_str(), 128, m.r.delivered, m.r,
                at_four > 0 ? m.r.records_per_s / at_four : 0, m.host_kib, m.host_cpu_ms,
                "ratio_to_four_subscribers");
    }
    if (only.empty() || only == "memory") {
        // What the host keeps per slot with one subscription, against what
        // nats-server keeps per subscription (when installed); and whether
        // `slotbus ls` and `stats` still answer at that many slots.
        const nats_process nats;
        if (!json)
            std::printf("\nmemory: one client's slots, each with one subscription; nats is "
                        "nats-server per subscription\n%-12s %8s %12s %12s %10s %10s\n",
                        "scenario", "slots", "host B/slot", "nats B/sub", "ls ms", "stats ms");
        for (const auto slots : memory_slots) {
            const auto m = host_memory(slots);
            const double nats_bytes = nats.up ? nats_bytes_per_subscription(nats, slots) : 0;
            if (!json)
                std::printf("%-12s %8zu %12.0f %12.0f %10.0f %10.0f%s\n", "memory", slots,
                            m.host_bytes_per_slot, nats_bytes, m.ls_ms, m.stats_ms,
                            m.cli_ok ? "" : "  (ls or stats failed)");
            results.push_back({{"scenario", "memory"},
                               {"slots", slots},
                               {"host_bytes_per_slot", m.host_bytes_per_slot},
                               {"nats_bytes_per_subscription", nats_bytes},
                               {"ls_ms", m.ls_ms},
                               {"stats_ms", m.stats_ms},
                               {"cli_ok", m.cli_ok}});
        }
    }
    if (only.empty() || only == "nats-bridge") {
        // Bridged through NATS: two hosts and their bridges, against NATS alone
        // (a libnats publisher and subscriber through the same nats-server), paired runs.
        const nats_process nats;
        std::optional<bridged_hosts> hosts;
        if (nats.up)
            hosts.emplace(nats);
        const std::string why = !nats.up ? nats.why : !hosts->up ? "the bridges did not start" : "";
        if (!why.empty()) {
            std::fprintf(stderr, "slotbus-bench: nats-bridge skipped: %s\n", why.c_str());
            results.push_back({{"scenario", "nats-bridge"}, {"skipped", why}});
        } else {
            if (!json)
                std::printf("\nnats-bridge: a writer on host alpha, its bridge, nats-server, "
                            "beta's bridge, a subscriber on beta (core NATS); nats-alone is a "
                            "libnats publisher and subscriber through the same server\n"
                            "%-10s %8s %14s %10s %10s %6s %10s %10s\n",
                            "scenario", "size", "records/s", "MB/s", "vs nats", "lost", "hosts KiB",
                            "hosts ms");
            for (const auto size : sizes_given ? sizes : std::vector<std::size_t>{128, 1024}) {
                const std::size_t n =
                    std::max<std::size_t>(1000, count / 4 * 128 / std::max<std::size_t>(size, 128));
                std::vector<rate> alone;
                std::vector<slotbus_result> runs;
                std::vector<double> ratios;
                for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) {
                    alone.push_back(nats_alone(nats, n, size));
                    runs.push_back(bridged(*hosts, n, size));
                    ratios.push_back(runs.back().r.records_per_s / alone.back().records_per_s);
                }
                row("nats-alone", size, n, median_of(alone), 1, 0, 0, "ratio_to_nats");
                const auto bus = median_of(runs);
                row("nats-bridge", size, n, bus.r, median_of(ratios), bus.host_kib, bus.host_cpu_ms,
                    "ratio_to_nats");
            }
        }
    }
    if (only.empty() || only == "cross-host") {
        // Two hosts: made once, linked once; every size's runs go through them.
        const linked_hosts hosts;
        if (!hosts.up) {
            std::fprintf(stderr, "slotbus-bench: cross-host skipped: %s\n", hosts.why.c_str());
            results.push_back({{"scenario", "cross-host"}, {"skipped", hosts.why}});
        } else {
            if (!json)
                std::printf("%scross-host: alpha and beta in two network namespaces joined by a "
                            "veth pair; raw-tls is one TLS 1.3 stream across it\n"
                            "%-10s %8s %14s %10s %10s %6s %10s %10s\n",
                            local ? "\n" : "", "scenario", "size", "records/s", "MB/s",
                            "vs raw tls", "lost", "hosts KiB", "hosts ms");
            const std::size_t base = cross_count ? cross_count : count / 5;
            for (const auto size : sizes_given ? sizes : std::vector<std::size_t>{128, 1024}) {
                const std::size_t n =
                    std::max<std::size_t>(1000, base * 128 / std::max<std::size_t>(size, 128));
                std::vector<rate> raws;
                std::vector<slotbus_result> runs;
                std::vector<double> ratios;
                for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) {
                    raws.push_back(raw_tls(hosts, n, size)); // paired, as the local scenarios
                    runs.push_back(cross_host(hosts, n, size));
                    ratios.push_back(runs.back().r.records_per_s / raws.back().records_per_s);
                }
                const auto raw = median_of(raws);
                const auto bus = median_of(runs);
                row("raw-tls", size, n, raw, 1, 0, 0, "ratio_to_raw_tls");
                row("cross-host", size, n, bus.r, median_of(ratios), bus.host_kib, bus.host_cpu_ms,
                    "ratio_to_raw_tls");
            }
        }
    }
    if (json)
        std::cout << boost::json::serialize(results) << '\n';
    if (!plot_prefix.empty())
        plot(plot_prefix, results);
    return 0;
}
