#include "service/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/stat.h>
#include <unistd.h>

namespace slotbus::bus {

namespace {

/// systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected
/// stderr to; a stderr redirected since (--log-file, --daemon) is another file.
bool stderr_is_the_journal()
{
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream || !*stream)
        return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0)
        return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
        return false;
    return dev == static_cast<unsigned long long>(st.st_dev) &&
           ino == static_cast<unsigned long long>(st.st_ino);
}

const char* name_of(level l)
{
    switch (l) {
    case level::error:
        return "error";
    case level::warning:
        return "warning";
    case level::info:
        break;
    }
    return "info";
}

} // namespace

std::string line_start(level l)
{
    // Checked each time: the log is rare (rate-limited where peers can cause
    // it), and stderr can be redirected as the host runs (SIGHUP's reopen).
    if (stderr_is_the_journal())
        return "<" + std::to_string(static_cast<int>(l)) + ">";
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm utc{};
    ::gmtime_r(&t, &utc);
    char text[64];
    const int n = std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ",
                                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                                utc.tm_min, utc.tm_sec, static_cast<int>(ms), name_of(l));
    return std::string(text, n > 0 ? static_cast<std::size_t>(n) : 0);
}

} // namespace slotbus::bus
