// Running slotbusd as a service: in the background (--daemon), with a pid
// file and a log file, or under systemd (Type=notify).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace slotbus::bus {

/// The background half of --daemon. daemonize() forks: the foreground process
/// waits until the daemon reports ready() or failed(), prints that, and exits
/// with 0 or 1, so `slotbusd --daemon && slotbus ls` works. The daemon is in a
/// session of its own, with stdin on /dev/null and stdout/stderr on the log file.
class daemon_handoff {
public:
    /// Returns in the daemon only; false (with `why`) when forking failed.
    bool daemonize(const std::filesystem::path& log_file, std::string& why);
    void ready(std::string_view line);
    void failed(std::string_view why);

private:
    int report_fd_ = -1;
};

/// Writes `pid` to `path` atomically (a temporary file renamed over it).
bool write_pid_file(const std::filesystem::path& path, std::string& why);

/// Points stderr (the log) at the log file, again after logrotate moved it;
/// stdout too for a daemon, whose stdout nobody reads.
bool reopen_log(const std::filesystem::path& log_file, bool with_stdout, std::string& why);

/// Tells systemd (Type=notify) about the service's state, when $NOTIFY_SOCKET
/// is set: "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...".
void notify_service_manager(std::string_view state);

} // namespace slotbus::bus
