// slotbus-bench: records/s and round trips through slotbus, against raw
// AF_UNIX baselines measured in the same run. Every writer, reader, relay and
// host is its own process.
//
//   slotbus-bench [--count N] [--sizes 16,128,1024,65536] [--rounds N] [--json]
//
// Scenarios (first cut): one writer to one reader, and ping-pong round trips.
// Baselines: raw one hop (writer -> reader) and raw two hops (writer -> a
// byte relay -> reader), batched in 32 KiB writes like the slotbus client.
#include <slotbus/slotbus.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
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
#include <sstream>
#include <string>
#include <sys/socket.h>
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
    if (pid == 0)
        ::_exit(f());
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

std::string nanos_line(std::uint64_t count, clock_type::duration d)
{
    return std::to_string(count) + " " +
           std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()) + "\n";
}

// ---- raw baselines -----------------------------------------------------------------------------

// Writes `count` records of `size` bytes as u32-length frames, in 32 KiB batches.
int raw_writer(int fd, std::size_t count, std::size_t size)
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
            write_all(fd, batch.data(), batch.size());
            batch.clear();
        }
    }
    write_all(fd, batch.data(), batch.size());
    ::close(fd);
    return 0;
}

// Reads frames until `count` records arrived; reports count and the time
// from the first byte to the last record.
int raw_reader(int fd, std::size_t count, const report_pipe& report)
{
    std::vector<char> buffer(4 * batch_bytes + 70000);
    std::size_t have = 0, seen = 0;
    clock_type::time_point first{};
    while (seen < count) {
        const auto n = ::read(fd, buffer.data() + have, buffer.size() - have);
        if (n <= 0)
            return 4;
        if (first == clock_type::time_point{})
            first = clock_type::now();
        have += static_cast<std::size_t>(n);
        std::size_t at = 0;
        while (have - at >= 4) {
            std::uint32_t length = 0;
            std::memcpy(&length, buffer.data() + at, 4);
            if (have - at < 4 + length)
                break;
            at += 4 + length;
            ++seen;
        }
        std::memmove(buffer.data(), buffer.data() + at, have - at);
        have -= at;
    }
    report.send(nanos_line(seen, clock_type::now() - first));
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
};

rate rate_of(const std::string& line, std::size_t size)
{
    std::istringstream in(line);
    double count = 0, ns = 1;
    in >> count >> ns;
    rate r;
    r.records_per_s = count * 1e9 / std::max(ns, 1.0);
    r.mb_per_s = r.records_per_s * static_cast<double>(size) / 1e6;
    return r;
}

rate raw_one_to_one(std::size_t count, std::size_t size, bool through_relay)
{
    report_pipe report;
    int ab[2], bc[2];
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, ab);
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, bc);
    const int reader_fd = through_relay ? bc[1] : ab[1];
    const pid_t reader = spawn([&] { return raw_reader(reader_fd, count, report); });
    pid_t relayer = 0;
    if (through_relay)
        relayer = spawn([&] { return relay(ab[1], bc[0]); });
    const pid_t writer = spawn([&] { return raw_writer(ab[0], count, size); });
    for (int fd : {ab[0], ab[1], bc[0], bc[1]})
        ::close(fd);
    const auto line = report.receive();
    reap(writer);
    reap(reader);
    stop(relayer);
    return rate_of(line, size);
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

    host_process()
    {
        dir = std::filesystem::temp_directory_path() /
              ("slotbus-bench-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        socket = (dir / "bus.sock").string();
        int out[2];
        (void)::pipe(out);
        std::fflush(nullptr);
        pid = ::fork();
        if (pid == 0) {
            ::dup2(out[1], 1);
            ::close(out[0]);
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 2); // the host's log is not the report
            ::execl(SLOTBUSD_PATH, SLOTBUSD_PATH, "--socket", socket.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        std::string seen;
        char c;
        while (seen.find("ready on") == std::string::npos && ::read(out[0], &c, 1) == 1)
            seen += c;
        ::close(out[0]);
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

// The slotbus writer: pipelined async writes, at most `window` unacknowledged.
int slotbus_writer(const std::string& socket, const std::string& name, std::size_t count,
                   std::size_t size)
{
    asio::io_context io;
    slotbus::connection bus(io.get_executor(), {"bench-writer", 256});
    const std::string record(size, 'w');
    std::size_t sent = 0, acked = 0;
    int status = 0;
    slotbus::client_slot slot;
    std::function<void()> pump = [&] {
        constexpr std::size_t window = 4096;
        while (sent < count && sent - acked < window) {
            ++sent;
            slot.async_write(asio::buffer(record),
                             [&](boost::system::error_code ec, std::uint32_t) {
                                 if (ec)
                                     status = 5;
                                 if (++acked == count)
                                     bus.close();
                                 else
                                     pump();
                             });
        }
    };
    bus.async_connect(socket, [&](boost::system::error_code ec) {
        if (ec)
            return void(status = 6);
        slotbus::client_slot::async_open(bus, name,
                                         [&](boost::system::error_code e, slotbus::client_slot s) {
                                             if (e)
                                                 return void(status = 7);
                                             slot = std::move(s);
                                             pump();
                                         });
    });
    io.run();
    return status;
}

// The slotbus reader: an async read loop; reports like raw_reader.
int slotbus_reader(const std::string& socket, const std::string& name, std::size_t count,
                   const report_pipe& report, const report_pipe& ready)
{
    asio::io_context io;
    slotbus::connection bus(io.get_executor(), {"bench-reader", 256});
    std::thread runner([&] { io.run(); });
    auto work = asio::make_work_guard(io);
    bus.connect(socket);
    auto slot = slotbus::server_slot::create(bus, name);
    std::size_t seen = 0;
    clock_type::time_point first{};
    std::promise<void> done;
    std::function<void()> next = [&] {
        slot.async_read_batch(
            1024, [&](boost::system::error_code ec, std::vector<slotbus::received_record> records) {
                if (ec)
                    return done.set_value();
                if (seen == 0)
                    first = clock_type::now();
                seen += records.size();
                if (seen >= count)
                    return done.set_value();
                next();
            });
    };
    asio::post(io, next);
    ready.send("ready\n");
    done.get_future().wait();
    report.send(nanos_line(seen, clock_type::now() - first));
    work.reset();
    asio::post(io, [&] { bus.close(); });
    runner.join();
    return 0;
}

struct slotbus_result {
    rate r;
    long host_kib = 0;
    long host_cpu_ms = 0;
};

slotbus_result slotbus_one_to_one(std::size_t count, std::size_t size)
{
    host_process host;
    report_pipe report, ready;
    const pid_t reader =
        spawn([&] { return slotbus_reader(host.socket, "bench/inbox", count, report, ready); });
    (void)ready.receive(); // the slot exists
    const pid_t writer =
        spawn([&] { return slotbus_writer(host.socket, "bench/inbox", count, size); });
    const auto line = report.receive();
    reap(writer);
    reap(reader);
    slotbus_result out;
    out.r = rate_of(line, size);
    std::tie(out.host_kib, out.host_cpu_ms) = host.usage();
    return out;
}

std::vector<double> slotbus_round_trips(std::size_t rounds, std::size_t size)
{
    host_process host;
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
            out.write(r);
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
            out.async_write(asio::buffer(record), [](boost::system::error_code, std::uint32_t) {});
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

int main(int argc, char** argv)
{
    std::size_t count = 1'000'000, rounds = 20'000;
    std::vector<std::size_t> sizes{16, 128, 1024, 65536};
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--count" && i + 1 < argc)
            count = std::stoul(argv[++i]);
        else if (flag == "--rounds" && i + 1 < argc)
            rounds = std::stoul(argv[++i]);
        else if (flag == "--sizes" && i + 1 < argc)
            sizes = parse_sizes(argv[++i]);
        else if (flag == "--json")
            json = true;
        else {
            std::cerr
                << "usage: slotbus-bench [--count N] [--rounds N] [--sizes 16,128,...] [--json]\n";
            return 2;
        }
    }
    std::signal(SIGPIPE, SIG_IGN);

    boost::json::array results;
    if (!json)
        std::printf("%-10s %8s %14s %10s %10s %12s %12s\n", "scenario", "size", "records/s", "MB/s",
                    "vs raw 2h", "host KiB", "host CPU ms");
    for (const auto size : sizes) {
        // Big records: fewer of them, so every size takes about as long.
        const std::size_t n =
            std::max<std::size_t>(1000, count * 128 / std::max<std::size_t>(size, 128));
        const auto one = raw_one_to_one(n, size, false);
        const auto two = raw_one_to_one(n, size, true);
        const auto bus = slotbus_one_to_one(n, size);
        auto row = [&](const char* name, const rate& r, long kib, long cpu) {
            const double ratio = r.records_per_s / std::max(two.records_per_s, 1.0);
            if (!json)
                std::printf("%-10s %8zu %14.0f %10.1f %9.1f%% %12ld %12ld\n", name, size,
                            r.records_per_s, r.mb_per_s, 100 * ratio, kib, cpu);
            results.push_back({{"scenario", name},
                               {"size", size},
                               {"records_per_s", r.records_per_s},
                               {"mb_per_s", r.mb_per_s},
                               {"ratio_to_raw_two_hops", ratio},
                               {"host_peak_kib", kib},
                               {"host_cpu_ms", cpu},
                               {"records", n},
                               {"lost", 0}});
        };
        row("raw-1hop", one, 0, 0);
        row("raw-2hop", two, 0, 0);
        row("1->1", bus.r, bus.host_kib, bus.host_cpu_ms);
    }
    const std::size_t rt_size = 128;
    const auto raw_rt = raw_round_trips(rounds, rt_size, true);
    const auto bus_rt = slotbus_round_trips(rounds, rt_size);
    if (!json)
        std::printf("\n%-10s %8s %10s %10s %10s   (round trip, us)\n", "scenario", "size", "p50",
                    "p99", "p99.9");
    for (auto [name, v] : {std::pair{"raw-2hop", &raw_rt}, std::pair{"slotbus", &bus_rt}}) {
        const double p50 = percentile(*v, 50) / 1000, p99 = percentile(*v, 99) / 1000,
                     p999 = percentile(*v, 99.9) / 1000;
        if (!json)
            std::printf("%-10s %8zu %10.1f %10.1f %10.1f\n", name, rt_size, p50, p99, p999);
        results.push_back({{"scenario", std::string("round-trip-") + name},
                           {"size", rt_size},
                           {"p50_us", p50},
                           {"p99_us", p99},
                           {"p999_us", p999},
                           {"rounds", v->size()}});
    }
    if (json)
        std::cout << boost::json::serialize(results) << '\n';
    return 0;
}
