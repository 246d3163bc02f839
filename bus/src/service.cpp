#include "service.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace slotbus::bus {

namespace {

std::string errno_text()
{
    return std::strerror(errno);
}

int open_log(const std::filesystem::path& log_file)
{
    return ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
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

bool write_pid_file(const std::filesystem::path& path, std::string& why)
{
    std::error_code ec;
    if (path.has_parent_path())
        std::filesystem::create_directories(path.parent_path(), ec);
    const auto temporary = path.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << ::getpid() << '\n';
        if (!out) {
            why = "cannot write " + temporary;
            return false;
        }
    }
    std::filesystem::rename(temporary, path, ec);
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
    const char* where = std::getenv("NOTIFY_SOCKET");
    if (!where || !*where)
        return;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::string path = where;
    if (path.size() >= sizeof address.sun_path)
        return;
    std::memcpy(address.sun_path, path.data(), path.size());
    if (path[0] == '@') // an abstract socket
        address.sun_path[0] = '\0';
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address),
             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size()));
    ::close(fd);
}

} // namespace slotbus::bus
