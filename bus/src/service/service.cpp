#include "service.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace slotbus::bus {

namespace {

std::string errno_text()
{
    return std::strerror(errno);
}

// Never through a symlink, and only a plain file of our own: a log path
// another user could point elsewhere must not make this host write there.
int open_log(const std::filesystem::path& log_file)
{
    const int fd =
        ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st {};
    if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())) {
        ::close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

} // namespace

bool daemon_handoff::daemonize(const std::filesystem::path& log_file, std::string& why)
{
    std::error_code ec;
    if (log_file.has_parent_path())
        std::filesystem::create_directories(log_file.parent_path(), ec);
    const int log_fd = open_log(log_file);
    if (log_fd < 0) {
        why = "cannot open the log file " + log_file.string() + ": " + errno_text();
        return false;
    }
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
        why = "pipe: " + errno_text();
        return false;
    }
    const pid_t first = ::fork();
    if (first < 0) {
        why = "fork: " + errno_text();
        return false;
    }
    if (first > 0) {
        // The foreground process: relay what the daemon reports, then exit.
        ::close(report[1]);
        std::string text;
        char buffer[512];
        for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) != 0;) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
        ::waitpid(first, nullptr, 0);
        const bool ok = text.starts_with("ready ");
        std::fputs(
            ok ? text.c_str() + 6
               : (text.empty() ? "slotbusd: the daemon died before it was ready\n" : text.c_str()),
            ok ? stdout : stderr);
        std::fflush(nullptr);
        std::_Exit(ok ? 0 : 1);
    }
    ::close(report[0]);
    ::setsid();
    // A second fork: the daemon is no session leader, so it never gets a terminal back.
    const pid_t second = ::fork();
    if (second < 0)
        std::_Exit(1);
    if (second > 0)
        std::_Exit(0);
    // Whatever the starter left open without O_CLOEXEC (its end of a pipe on
    // our stdout, say) must not live on in the daemon: it would keep that
    // pipe open, and whoever waits for its end, waiting.
    report_fd_ = report[1];
    ::close_range(3, static_cast<unsigned>(std::min(report_fd_, log_fd)) - 1, 0);
    ::close_range(static_cast<unsigned>(std::max(report_fd_, log_fd)) + 1, ~0u, 0);
    for (int fd = std::min(report_fd_, log_fd) + 1; fd < std::max(report_fd_, log_fd); ++fd)
        ::close(fd);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close(null_fd);
    ::close(log_fd);
    return true;
}

void daemon_handoff::ready(std::string_view line)
{
    if (report_fd_ < 0)
        return;
    std::string text = "ready " + std::string(line) + "\n";
    [[maybe_unused]] auto n = ::write(report_fd_, text.data(), text.size());
    ::close(report_fd_);
    report_fd_ = -1;
}

void daemon_handoff::failed(std::string_view why)
{
    if (report_fd_ < 0)
        return;
    std::string text = std::string(why) + "\n";
    [[maybe_unused]] auto n = ::write(report_fd_, text.data(), text.size());
    ::close(report_fd_);
    report_fd_ = -1;
}

bool ensure_private_directory(const std::filesystem::path& dir, std::string& why)
{
    return ensure_host_directory(dir, 0600, std::nullopt, why);
}

bool ensure_host_directory(const std::filesystem::path& dir, unsigned socket_mode,
                           std::optional<unsigned> group, std::string& why)
{
    // Search access for those the socket is shared with (all a connect
    // needs); read is tolerated on an existing one; write for no one.
    const bool to_group = (socket_mode & 0060) != 0, to_others = (socket_mode & 0006) != 0;
    const mode_t search = (to_group ? 0010 : 0) | (to_others ? 0001 : 0);
    const mode_t tolerated = (to_group ? 0050 : 0) | (to_others ? 0005 : 0);
    std::error_code ec;
    if (dir.has_parent_path())
        std::filesystem::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        why = "cannot create " + dir.string() + ": " + errno_text();
        return false;
    }
    // Checked and changed through one descriptor: never through a symlink,
    // never a directory swapped in between.
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st {};
    const bool opened = fd >= 0 && ::fstat(fd, &st) == 0;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    if (!opened)
        why = dir.string() + " is not a directory (a symlink?)";
    else if (st.st_uid != ::geteuid())
        why = dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
              ", not to this host's (" + std::to_string(::geteuid()) + ")";
    else if ((st.st_mode & 077 & ~tolerated) != 0)
        why =
            dir.string() + " has mode " + mode + "; it must be 0700" +
            (tolerated ? " or allow only search and read to those the socket is shared with" : "");
    if (!why.empty()) {
        if (fd >= 0)
            ::close(fd);
        why = "refusing to start: " + why +
              ". Another user could replace the socket or the host's files there; choose a "
              "--socket in a directory for the host alone (it creates a missing one, mode 0700)";
        return false;
    }
    // Ours and safe: open it as far as the socket is shared, no further.
    if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0)
        why = "cannot give " + dir.string() + " to group " + std::to_string(*group) + ": " +
              errno_text();
    else if ((st.st_mode & 0777) != (0700 | search) && ::fchmod(fd, 0700 | search) != 0)
        why = "cannot set the mode of " + dir.string() + ": " + errno_text();
    ::close(fd);
    return why.empty();
}

bool write_pid_file(const std::filesystem::path& path, std::string& why)
{
    std::error_code ec;
    if (path.has_parent_path())
        std::filesystem::create_directories(path.parent_path(), ec);
    // A fresh file, never one that is there already (a symlink to root's files, say).
    const auto temporary = path.string() + ".tmp";
    ::unlink(temporary.c_str());
    const int fd =
        ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    const auto text = std::to_string(::getpid()) + "\n";
    const bool written =
        fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0)
        ::close(fd);
    if (!written) {
        why = "cannot write " + temporary + ": " + errno_text();
        return false;
    }
    std::filesystem::rename(temporary, path, ec); // replaces a symlink, never follows it
    if (ec)
        why = "cannot write " + path.string() + ": " + ec.message();
    return !ec;
}

bool reopen_log(const std::filesystem::path& log_file, bool with_stdout, std::string& why)
{
    const int fd = open_log(log_file);
    if (fd < 0) {
        why = "cannot reopen the log file " + log_file.string() + ": " + errno_text();
        return false;
    }
    if (with_stdout)
        ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
    return true;
}

void notify_service_manager(std::string_view state)
{
    // libsystemd's own: it knows $NOTIFY_SOCKET's forms (a path, an abstract
    // socket, vsock) and does nothing without it.
    ::sd_notify(0, std::string(state).c_str());
}

} // namespace slotbus::bus
