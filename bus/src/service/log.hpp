// The host's log: one line per event on stderr, which systemd, a terminal or
// --log-file keep.
#pragma once

#include <chrono>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <string_view>

namespace slotbus::bus {

/// Writes one whole line, so lines from the host never interleave mid-line.
template <class... Parts> void log(const Parts&... parts)
{
    std::ostringstream line;
    line << "slotbusd: ";
    (line << ... << parts);
    line << '\n';
    std::cerr << line.str() << std::flush;
}

/// For events a peer can cause at any rate (refused connections, a full fd
/// table): one line per interval, saying how many were not logged.
class rate_limited_log {
public:
    explicit rate_limited_log(std::chrono::steady_clock::duration interval) : interval_(interval) {}
    template <class... Parts> void operator()(const Parts&... parts)
    {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ < interval_) {
            ++suppressed_;
            return;
        }
        last_ = now;
        if (suppressed_ != 0)
            log(parts..., " (and ", suppressed_, " more like it since the last such line)");
        else
            log(parts...);
        suppressed_ = 0;
    }

private:
    std::chrono::steady_clock::duration interval_;
    std::chrono::steady_clock::time_point last_{};
    std::uint64_t suppressed_ = 0;
};

} // namespace slotbus::bus
