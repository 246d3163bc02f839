// The host's log: one line per event on stderr, which systemd, a terminal or
// --log-file keep.
#pragma once

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

} // namespace slotbus::bus
