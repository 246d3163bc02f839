// The host's log: one line per event on stderr, which a terminal, --log-file
// or systemd's journal keep. Each line has a level (syslog's priorities):
// under the journal as its `<N>` prefix, which the journal takes as the
// line's priority and strips (it keeps the time itself); elsewhere as a UTC
// timestamp and the level's name.
#pragma once

#include <chrono>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

namespace slotbus::bus {

enum class level : int { error = 3, warning = 4, info = 6 };

/// The start of a line at `l`: `<4>` when stderr is the journal's stream
/// ($JOURNAL_STREAM names it), else `2026-12-03T21:49:46.175Z warning `.
std::string line_start(level l);

/// Writes one whole line, so lines from the host never interleave mid-line.
template <class... Parts> void log_at(level l, const Parts&... parts)
{
    std::ostringstream line;
    line << line_start(l) << "slotbusd: ";
    (line << ... << parts);
    line << '\n';
    std::cerr << line.str() << std::flush;
}

/// What happened, as it should (a plugin started, a connection closed).
template <class... Parts> void log(const Parts&... parts)
{
    log_at(level::info, parts...);
}
/// Something an operator should look at: a peer refused, a plugin that
/// failed, a slot that holds its writers back.
template <class... Parts> void warn(const Parts&... parts)
{
    log_at(level::warning, parts...);
}
/// The host cannot do what it was asked to (start, read a file it needs).
template <class... Parts> void log_error(const Parts&... parts)
{
    log_at(level::error, parts...);
}

/// For events a peer can cause at any rate (refused connections, a full fd
/// table): at most `burst` lines per interval, the next one saying how many
/// were not logged.
class rate_limited_log {
public:
    explicit rate_limited_log(std::chrono::steady_clock::duration interval,
                              level l = level::warning, unsigned burst = 1)
        : interval_(interval), level_(l), burst_(burst)
    {
    }
    template <class... Parts> void operator()(const Parts&... parts)
    {
        const auto now = std::chrono::steady_clock::now();
        if (now - window_ >= interval_) {
            window_ = now;
            in_window_ = 0;
        }
        if (in_window_ == burst_) {
            ++suppressed_;
            return;
        }
        ++in_window_;
        if (suppressed_ != 0)
            log_at(level_, parts..., " (and ", suppressed_,
                   " more like it since the last such line)");
        else
            log_at(level_, parts...);
        suppressed_ = 0;
    }

private:
    std::chrono::steady_clock::duration interval_;
    level level_;
    unsigned burst_;
    std::chrono::steady_clock::time_point window_{};
    unsigned in_window_ = 0;
    std::uint64_t suppressed_ = 0;
};

} // namespace slotbus::bus
