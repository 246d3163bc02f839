// `slotbus bench`: throughput and latency against the running host, in the
// spirit of `nats bench`. P publishers write records of one size to a topic;
// S subscriber slots each receive every one of them. Each record carries the
// time it was written, and all the clients run in this process, on one
// clock: every delivery gives a latency, publish to receive, under the
// run's own load (or the load --rate sets).
#include "cli.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <latch>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace slotbus::cli {

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
constexpr std::size_t stamp_size = sizeof(std::int64_t); // the send time, first in each record

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_type::now().time_since_epoch())
        .count();
}

struct bench_setup {
    std::string address, topic, inbox_prefix;
    std::size_t publishers = 1, subscribers = 1, records = 100000, size = 128;
    double rate = 0; // records/s per publisher; 0: as fast as the host takes them
};

struct client_result {
    std::size_t count = 0;    // records written (acknowledged) or received
    std::int64_t last_ns = 0; // when the last one was acknowledged or came
    std::size_t lost = 0;     // a subscriber's records that never came (gaps told, or missing)
    std::string error;        // what stopped it early
    std::vector<std::int64_t> latencies_ns;
};

/// A connection whose context runs on a thread of its own, so this thread
/// may make blocking calls (setup) while handlers run there. Nothing here
/// throws: connecting is the caller's, after it is made.
struct running_connection {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    slotbus::connection bus;
    std::thread runner{[this] { io.run(); }};
    explicit running_connection(std::uint32_t window)
        : bus(io.get_executor(), {"slotbus-bench", window, ""})
    {
    }
    /// Runs `f` on the connection's thread and waits for it: what the
    /// handlers touch is let go there, while the connection still runs.
    template <class F> void on_io(F f)
    {
        std::promise<void> done;
        asio::post(io, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }
    ~running_connection()
    {
        work.reset();
        asio::post(io, [this] { bus.close(); });
        runner.join();
    }
};

/// Waits for `done`, giving up when `progress` has not moved for 5 s.
template <class Progress> bool wait_while_moving(std::future<void>& done, Progress progress)
{
    auto seen = progress();
    auto quiet_since = clock_type::now();
    while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (const auto now = progress(); now != seen) {
            seen = now;
            quiet_since = clock_type::now();
        } else if (clock_type::now() - quiet_since > std::chrono::seconds(5)) {
            return false;
        }
    }
    return true;
}

// What a client's handlers touch. It is made before the connection, so it
// outlives the connection's thread; the slot and timer are let go on that
// thread (running_connection::on_io) before the connection goes.
struct client_state {
    std::atomic<std::size_t> count{0};
    std::atomic<bool> stopping{false};
    std::promise<void> done;
    std::atomic<bool> finished{false};
    std::string error; // on the connection's thread until it is stopped
    void finish()
    {
        if (!finished.exchange(true))
            done.set_value();
    }
};

/// What every client does around its own work: `setup` (which may throw),
/// then it says it is ready and `run`s (which says what went wrong, if
/// anything); then `let_go` on the connection's thread of what the handlers
/// touch, and the outcome into `r` once no handler can run.
template <class Setup, class Run, class LetGo>
void run_client(running_connection& c, std::latch& ready, client_state& state, client_result& r,
                Setup setup, Run run, LetGo let_go)
{
    bool counted_down = false;
    std::string failure;
    try {
        setup();
        ready.count_down();
        counted_down = true;
        failure = run();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (!counted_down)
        ready.count_down();
    c.on_io([&] {
        state.stopping = true;
        let_go();
    });
    r.count = state.count;
    r.error = !failure.empty() ? std::move(failure) : std::move(state.error);
}

// Writes `count` records pipelined (at most `window` unacknowledged, as the
// SDK's benchmark writers do), or one every 1/rate s.
void run_publisher(const bench_setup& s, std::size_t count, std::latch& ready,
                   std::shared_future<std::int64_t> start, client_result& r)
{
    constexpr std::size_t batch = 64;
    const std::size_t window = std::clamp<std::size_t>((8u << 20) / (s.size + 8), 2 * batch, 4096);
    client_state state;
    std::vector<std::string> records(batch, std::string(s.size, 'b'));
    std::vector<asio::const_buffer> buffers(batch);
    std::size_t sent = 0;     // on the connection's thread only
    bool window_full = false; // likewise: pump() waits for acknowledgements
    std::int64_t t0 = 0;
    std::optional<slotbus::client_slot> slot;
    std::optional<asio::steady_timer> pace;
    std::function<void()> pump = [&] {
        while (sent < count && !state.stopping) {
            if (sent - state.count >= window) {
                window_full = true;
                return;
            }
            std::size_t n = std::min(batch, count - sent);
            if (s.rate > 0) {
                const auto due =
                    t0 + static_cast<std::int64_t>(1e9 * static_cast<double>(sent) / s.rate);
                if (now_ns() < due) {
                    pace->expires_after(std::chrono::nanoseconds(due - now_ns()));
                    pace->async_wait([&](boost::system::error_code ec) {
                        if (!ec)
                            pump();
                    });
                    return;
                }
                n = 1;
            }
            for (std::size_t i = 0; i < n; ++i) {
                const auto at = now_ns();
                std::memcpy(records[i].data(), &at, stamp_size);
                buffers[i] = asio::buffer(records[i]);
            }
            sent += n;
            slot->async_write_batch(std::span(buffers).first(n),
                                    [&, n](boost::system::error_code ec, std::uint32_t) {
                                        if (state.stopping)
                                            return;
                                        if (ec && state.error.empty())
                                            state.error = ec.message();
                                        if ((state.count += n) == count) {
                                            r.last_ns = now_ns();
                                            state.finish();
                                        } else if (window_full && sent - state.count < window / 2) {
                                            window_full = false;
                                            pump();
                                        }
                                    });
        }
    };
    running_connection c(256);
    run_client(
        c, ready, state, r,
        [&] {
            c.bus.connect(s.address);
            slot.emplace(slotbus::client_slot::open(c.bus, s.topic));
            pace.emplace(c.io);
        },
        [&]() -> std::string {
            t0 = start.get();
            asio::post(c.io, pump);
            auto done = state.done.get_future();
            if (!wait_while_moving(done, [&] { return state.count.load(); }))
                return "no acknowledgement for 5 s";
            return {};
        },
        [&] {
            pace.reset();
            slot.reset();
        });
}

// Receives until it has every record, or nothing came for 5 s once the
// publishers started (then what did not come counts as lost, rather than
// the run hanging).
void run_subscriber(const bench_setup& s, std::size_t index, std::latch& ready,
                    std::shared_future<std::int64_t> start, client_result& r)
{
    const std::size_t expected = s.records;
    client_state state;
    std::optional<slotbus::server_slot> slot;
    std::optional<slotbus::subscription> topic;
    std::function<void()> next = [&] {
        slot->async_read_records(4096,
                                 [&](boost::system::error_code ec, slotbus::record_batch batch) {
                                     if (state.stopping)
                                         return;
                                     if (ec) {
                                         state.error = ec.message();
                                         return state.finish();
                                     }
                                     const auto at = now_ns();
                                     for (std::size_t i = 0; i < batch.size(); ++i) {
                                         r.lost += batch.missed_before(i);
                                         std::int64_t sent_at = 0;
                                         std::memcpy(&sent_at, batch[i].data(), stamp_size);
                                         r.latencies_ns.push_back(at - sent_at);
                                     }
                                     r.last_ns = at;
                                     if ((state.count += batch.size()) >= expected)
                                         return state.finish();
                                     next();
                                 });
    };
    running_connection c(1024);
    run_client(
        c, ready, state, r,
        [&] {
            c.bus.connect(s.address);
            slot.emplace(
                slotbus::server_slot::create(c.bus, s.inbox_prefix + std::to_string(index)));
            topic.emplace(slot->subscribe(s.topic));
            r.latencies_ns.reserve(expected);
            asio::post(c.io, next);
        },
        [&]() -> std::string {
            start.wait(); // the quiet time counts from when the publishers start
            auto done = state.done.get_future();
            wait_while_moving(done, [&] { return state.count.load(); });
            return {};
        },
        [&] {
            topic.reset();
            slot.reset();
        });
    if (r.count < expected)
        r.lost = std::max(r.lost, expected - r.count);
}

std::string thousands(double v)
{
    auto digits = std::to_string(static_cast<std::uint64_t>(v + 0.5));
    for (auto i = static_cast<std::ptrdiff_t>(digits.size()) - 3; i > 0; i -= 3)
        digits.insert(static_cast<std::size_t>(i), ",");
    return digits;
}

std::string mib_text(double mib_per_s)
{
    std::ostringstream out;
    out << std::fixed << std::setprecision(1) << mib_per_s << " MiB/s";
    return out.str();
}

std::string latency_text(std::int64_t ns)
{
    std::ostringstream out;
    out << std::fixed << std::setprecision(ns < 10'000 ? 1 : 0);
    if (ns < 1'000'000)
        out << static_cast<double>(ns) / 1e3 << " us";
    else
        out << std::setprecision(1) << static_cast<double>(ns) / 1e6 << " ms";
    return out.str();
}

/// Records/s and bytes/s of one side, from the start to each client's last record.
struct side_rates {
    double total = 0, min = 0, max = 0; // records/s: all clients together; the slowest and fastest
};

double seconds(std::int64_t ns)
{
    return static_cast<double>(ns) / 1e9;
}

side_rates rates(const std::vector<client_result>& clients, std::int64_t t0)
{
    side_rates out;
    std::int64_t last = t0;
    std::size_t count = 0;
    bool first = true;
    for (const auto& c : clients) {
        if (c.last_ns <= t0)
            continue;
        const double each = static_cast<double>(c.count) / seconds(c.last_ns - t0);
        out.min = first ? each : std::min(out.min, each);
        out.max = first ? each : std::max(out.max, each);
        first = false;
        last = std::max(last, c.last_ns);
        count += c.count;
    }
    if (last > t0)
        out.total = static_cast<double>(count) / seconds(last - t0);
    return out;
}

} // namespace

int cmd_bench(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    bench_setup s;
    std::string name;
    own.add_options()("name", po::value(&name),
                      "the topic to publish on (default: bench/PID/topic; the subscriber slots "
                      "are bench/PID/subN)")("pub,p", po::value(&s.publishers)->default_value(1),
                                             "publishers, each on a connection of its own")(
        "sub,s", po::value(&s.subscribers)->default_value(1),
        "subscriber slots, each on a connection of its own, each receiving every record")(
        "msgs,n", po::value(&s.records)->default_value(100000),
        "records in all, shared among the publishers")(
        "size", po::value(&s.size)->default_value(128), "bytes a record (at least 8)")(
        "rate", po::value(&s.rate)->default_value(0),
        "records/s a publisher writes (0: as fast as the host takes them), to see latency "
        "under a given load");
    po::positional_options_description positional;
    positional.add("name", 1);
    po::variables_map vm;
    if (!parse("bench", "[NAME] [--pub N] [--sub N] [--msgs N] [--size BYTES] [--rate R] [--json]",
               "Measures the running host: P publishers write N records of SIZE bytes to a\n"
               "topic, S subscriber slots each receive all of them (back-pressure, not loss,\n"
               "when they fall behind). Prints records/s and bytes/s both ways, and the\n"
               "latency from write to receipt (p50, p99, p99.9, max), which includes the\n"
               "queueing of the run's own load unless --rate paces it. The host's other\n"
               "traffic shares the machine: compare runs, not machines.",
               own, positional, c, argv, vm))
        return ok;
    if (s.size < stamp_size || s.size > (1u << 20))
        throw usage_error("bench: --size must be 8 to 1048576 bytes (the send time rides in "
                          "the first 8)");
    if (s.publishers < 1 || s.subscribers < 1 || s.publishers > 256 || s.subscribers > 256)
        throw usage_error("bench: --pub and --sub must be 1 to 256");
    if (s.records < s.publishers)
        throw usage_error("bench: --msgs must be at least one record a publisher");
    s.address = c.address;
    const std::string base = "bench/" + std::to_string(::getpid()) + "/";
    s.topic = name.empty() ? base + "topic" : name_argument("bench", name).str();
    s.inbox_prefix = base + "sub";
    {
        auto probe = connect(c); // exits with a clear line when no host answers
    }

    std::vector<client_result> pubs(s.publishers), subs(s.subscribers);
    std::vector<std::thread> threads;
    std::promise<std::int64_t> start;
    const auto started = start.get_future().share();
    std::latch subscribed(static_cast<std::ptrdiff_t>(s.subscribers));
    for (std::size_t i = 0; i < s.subscribers; ++i)
        threads.emplace_back(run_subscriber, std::cref(s), i, std::ref(subscribed), started,
                             std::ref(subs[i]));
    subscribed.wait(); // the topic has its subscribers before anyone opens it
    std::latch ready(static_cast<std::ptrdiff_t>(s.publishers));
    for (std::size_t i = 0; i < s.publishers; ++i) {
        const auto share = s.records / s.publishers + (i < s.records % s.publishers ? 1 : 0);
        threads.emplace_back(run_publisher, std::cref(s), share, std::ref(ready), started,
                             std::ref(pubs[i]));
    }
    ready.wait();
    const auto t0 = now_ns();
    start.set_value(t0);
    for (auto& t : threads)
        t.join();

    std::vector<std::int64_t> all;
    std::size_t lost = 0;
    std::string error;
    for (auto& r : subs) {
        all.insert(all.end(), r.latencies_ns.begin(), r.latencies_ns.end());
        lost += r.lost;
        if (error.empty())
            error = r.error;
    }
    for (const auto& r : pubs)
        if (error.empty())
            error = r.error;
    std::sort(all.begin(), all.end());
    auto percentile = [&](double p) -> std::int64_t { // nearest rank
        if (all.empty())
            return 0;
        const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(all.size())));
        return all[std::clamp<std::size_t>(rank, 1, all.size()) - 1];
    };
    const auto published = rates(pubs, t0), received = rates(subs, t0);
    const double mib = static_cast<double>(s.size) / (1 << 20);

    if (c.json) {
        json::object out{
            {"topic", s.topic},
            {"publishers", s.publishers},
            {"subscribers", s.subscribers},
            {"records", s.records},
            {"size", s.size},
            {"rate", s.rate},
            {"published_per_s", published.total},
            {"received_per_s", received.total},
            {"published_bytes_per_s", published.total * static_cast<double>(s.size)},
            {"received_bytes_per_s", received.total * static_cast<double>(s.size)},
            {"lost", lost},
            {"latency_ns", json::object{{"p50", percentile(0.5)},
                                        {"p99", percentile(0.99)},
                                        {"p999", percentile(0.999)},
                                        {"max", all.empty() ? 0 : all.back()}}},
        };
        if (!error.empty())
            out["error"] = error;
        std::cout << json_text(out) << '\n';
        return error.empty() && lost == 0 ? ok : failed;
    }
    auto min_max = [&](const side_rates& r, std::size_t clients) -> std::string {
        if (clients < 2)
            return "";
        return "; each " + thousands(r.min) + " to " + thousands(r.max);
    };
    std::cout << "slotbus bench: " << counted(s.publishers, "publisher", "publishers") << ", "
              << counted(s.subscribers, "subscriber", "subscribers") << ", "
              << counted(s.records, "record", "records") << " of " << bytes_text(s.size) << " on "
              << s.topic << (s.rate > 0 ? ", " + thousands(s.rate) + " records/s a publisher" : "")
              << "\n";
    print_table({
        {"published", thousands(published.total) + " records/s", mib_text(published.total * mib),
         "(" + counted(s.publishers, "publisher", "publishers") + min_max(published, s.publishers) +
             ")"},
        {"received", thousands(received.total) + " records/s", mib_text(received.total * mib),
         "(" + counted(s.subscribers, "subscriber", "subscribers") +
             min_max(received, s.subscribers) + ", " +
             (lost ? counted(lost, "record", "records") + " lost" : "none lost") + ")"},
        {"latency", "p50 " + latency_text(percentile(0.5)), "p99 " + latency_text(percentile(0.99)),
         "p99.9 " + latency_text(percentile(0.999)) + ", max " +
             latency_text(all.empty() ? 0 : all.back()) + " (write to receipt)"},
    });
    if (!error.empty()) {
        std::cerr << "slotbus: bench: " << error << '\n';
        return failed;
    }
    return lost == 0 ? ok : failed;
}

} // namespace slotbus::cli
