// Running slotbusd as a service: in the background (--daemon), with a pid
// file and a log file, or under systemd (Type=notify).
#pragma once

#include <filesystem>
#include <optional>
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

/// Creates `dir` (mode 0700) if it is missing; then it must be a directory
/// (no symlink) of this process's uid with no access for group or others,
/// else false with `why` for the operator.
bool ensure_private_directory(const std::filesystem::path& dir, std::string& why);
/// The same for the socket's directory when the socket is shared (D-Bus
/// system bus style): group or others may search it as far as
/// `socket_mode` shares the socket with them, and `group` owns it.
bool ensure_host_directory(const std::filesystem::path& dir, unsigned socket_mode,
                           std::optional<unsigned> group, std::string& why);

/// Writes `pid` to `path` atomically: a new temporary file (never through a
/// symlink) renamed over it.
bool write_pid_file(const std::filesystem::path& path, std::string& why);

/// Points stderr (the log) at the log file, again after logrotate moved it;
/// stdout too for a daemon, whose stdout nobody reads. The file is opened
/// without following a symlink and must be a plain file of this uid.
bool reopen_log(const std::filesystem::path& log_file, bool with_stdout, std::string& why);

/// Tells systemd (Type=notify) about the service's state, when $NOTIFY_SOCKET
/// is set: "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...".
void notify_service_manager(std::string_view state);

} // namespace slotbus::bus
