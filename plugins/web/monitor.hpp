// What the web view knows of the host: the admin plane's answers, polled at
// an interval, and the rates worked out from one poll to the next.
#pragma once

#include "slotbus/connection.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <string>

namespace slotbus::web {

/// A number field of an admin answer, or 0 when it is missing or no number.
double number_in(const boost::json::object& o, std::string_view key);

/// Host-wide rates between two polls, per second.
struct rate_point {
    std::int64_t at_ms = 0; ///< unix time of the later poll
    double writes = 0, deliveries = 0, bytes_in = 0, bytes_out = 0, dropped = 0;
};

/// One poll's answers, as the host gave them, with rates added: every slot
/// of the listing gets `rate_in` and `rate_out` (records per second).
struct snapshot {
    boost::json::object stats;       ///< "stats" (totals; no per-slot part)
    bool stats_current = false;      ///< this look's (else the last good one's, or none)
    boost::json::array slots;        ///< "slots", every page (at most max_slots)
    bool slots_cut = false;          ///< the tree has more than max_slots
    boost::json::object connections; ///< "connections"
    boost::json::object plugins;     ///< "plugins" with each one's log tail
    boost::json::object hosts;       ///< "hosts": links and discovered hosts
    std::chrono::steady_clock::time_point taken{};
};

struct monitor_options {
    std::chrono::milliseconds interval{1000};
    std::size_t max_slots = 10000; ///< of the tree, listed per poll
    std::size_t log_lines = 20;    ///< of each plugin's output
    std::size_t history = 300;     ///< rate points kept (5 minutes at 1 s)
};

/// Polls on the connection's executor; single-threaded like it.
class monitor {
public:
    monitor(connection& bus, monitor_options options);

    /// Polls now, then every interval. `on_gone` is called once if the
    /// connection to the host is lost.
    void start(std::function<void()> on_gone);
    void stop();

    /// The last look got the host's stats, and is under three intervals old.
    [[nodiscard]] bool fresh() const;
    /// Bumped by every look: what is made from one can be kept until the next.
    [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
    /// Why the last poll failed, or empty.
    [[nodiscard]] const std::string& problem() const noexcept { return problem_; }
    [[nodiscard]] const snapshot& last() const noexcept { return last_; }
    [[nodiscard]] const std::deque<rate_point>& history() const noexcept { return history_; }
    [[nodiscard]] const monitor_options& options() const noexcept { return options_; }

private:
    void poll();
    void ask(std::string command, std::string argument,
             std::function<void(boost::json::value)> then);
    void list_slots_from(std::string after);
    void ask_the_rest();
    void finish();
    void schedule();

    connection& bus_;
    monitor_options options_;
    boost::asio::steady_timer timer_;
    std::function<void()> on_gone_;
    bool stopped_ = false;
    snapshot next_, last_;
    std::string problem_, next_problem_;
    std::deque<rate_point> history_;
    std::uint64_t generation_ = 0;
    struct seen {
        std::uint64_t in = 0, out = 0;
    };
    std::map<std::string, seen, std::less<>> seen_; ///< per slot, at the last poll
};

} // namespace slotbus::web
