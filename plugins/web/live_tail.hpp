// The live tail: records on the topics browsers watch, through one inbox
// slot that drops what does not fit rather than slow anyone down, handed to
// each browser's bounded feed, which drops its own oldest and counts them.
#pragma once

#include "slotbus/server_slot.hpp"
#include "slotbus/subscription.hpp"
#include "slotbus/topic_pattern.hpp"

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace slotbus::web {

/// What one browser asked to see: a topic pattern, and an event type and
/// source, each exact or a prefix ending in `*` (empty: any).
struct tail_filter {
    topic_pattern pattern = topic_pattern::parse("**");
    std::string type, source;

    /// ec invalid_name for a pattern that is none; invalid_parameter for a
    /// type or source over 256 bytes.
    static tail_filter make(std::string_view pattern, std::string_view type,
                            std::string_view source, std::error_code& ec);
    [[nodiscard]] bool wants(std::string_view name_key, std::string_view event_type,
                             std::string_view event_source) const;
};

/// One browser's share of the tail.
class tail_feed {
public:
    tail_feed(tail_filter filter, std::size_t max_events)
        : filter_(std::move(filter)), max_events_(max_events)
    {
    }

    /// An event (one line of JSON) for this browser; past max_events, or
    /// max_bytes of them, the oldest waiting ones go, counted.
    void push(std::string event);
    static constexpr std::size_t max_bytes = 1u << 20;
    /// Records the bus dropped for the tail's inbox before the next ones.
    void bus_dropped(std::uint64_t n);
    /// What waits, as Server-Sent Events: a "missed" event first when
    /// anything was dropped since the last take.
    std::string take();
    [[nodiscard]] bool ready() const noexcept
    {
        return !events_.empty() || dropped_here_ || dropped_by_bus_;
    }
    /// Called when the feed becomes ready (the browser's connection writes).
    std::function<void()> on_ready;
    [[nodiscard]] const tail_filter& filter() const noexcept { return filter_; }

private:
    void notify();

    tail_filter filter_;
    std::size_t max_events_;
    std::deque<std::string> events_;
    std::size_t bytes_ = 0; // of events_
    std::uint64_t dropped_here_ = 0, dropped_by_bus_ = 0;
    std::uint64_t missed_here_total_ = 0, missed_bus_total_ = 0;
};

struct tail_options {
    std::string inbox;                     ///< the inbox slot's name
    std::uint64_t inbox_budget = 4u << 20; ///< bytes: past it the host drops what comes
    std::uint32_t max_rate = 2000;         ///< records a second it takes from the inbox
    std::size_t max_feeds = 16;            ///< browsers tailing at once
    std::size_t feed_events = 1000;        ///< waiting per browser
    std::size_t preview_bytes = 1024;      ///< of a record's data, in an event
};

/// Lives on the connection's executor.
class live_tail {
public:
    live_tail(connection& bus, tail_options options);

    /// Creates the inbox; `done(ec)` once it is there (or not).
    void start(std::function<void(std::error_code)> done);
    void stop();

    /// A feed for one browser (subscribing the inbox to its pattern); null
    /// with ec too_many_open_files past max_feeds, broken_pipe before start or after stop.
    std::shared_ptr<tail_feed> open(tail_filter filter, std::error_code& ec);

    [[nodiscard]] std::size_t feeds() const noexcept { return feeds_.size(); }
    [[nodiscard]] std::uint64_t records_seen() const noexcept { return seen_; }

private:
    void read();
    void handle(const record_batch& batch);
    /// Forgets feeds whose browser went, and unsubscribes the patterns
    /// nobody watches now.
    void release_gone();
    /// release_gone() now and every second.
    void prune();

    connection& bus_;
    tail_options options_;
    std::optional<server_slot> inbox_;
    boost::asio::steady_timer pace_, prune_timer_;
    bool stopped_ = false, reading_ = false;
    struct watched {
        std::weak_ptr<tail_feed> feed;
        std::string pattern;
    };
    std::vector<watched> feeds_;
    struct pattern_use {
        std::size_t feeds = 0;
        subscription sub;
    };
    std::map<std::string, pattern_use> patterns_;
    std::uint64_t seen_ = 0;
    std::chrono::steady_clock::time_point window_start_{};
    std::uint32_t in_window_ = 0;
};

} // namespace slotbus::web
