// A child process for tests: stdout read line by line under deadlines,
// stderr kept in a file, stopped politely then firmly.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/process/v2/process.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace slotbus::test {

using namespace std::chrono_literals;

/// A Unix user a child runs as (the test must be root to start one).
struct run_as {
    unsigned uid = 0, gid = 0;
    std::vector<unsigned> groups; ///< supplementary
};

class child {
public:
    /// Starts `exe` with `args`; `env` entries ("K=V") are added to this
    /// process's environment; with `as`, it runs as that user.
    child(const std::string& exe, const std::vector<std::string>& args,
          const std::vector<std::string>& env = {}, std::optional<run_as> as = std::nullopt);
    ~child();
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    [[nodiscard]] int pid() const;

    /// Reads stdout until a line containing `needle` arrives; false at the
    /// deadline or when stdout closes first.
    bool wait_for_line(std::string_view needle, std::chrono::milliseconds deadline = 5s);
    /// Reads stdout until `count` lines containing `needle` have arrived in all.
    bool wait_for_lines(std::string_view needle, std::size_t count,
                        std::chrono::milliseconds deadline = 5s);

    /// Waits for the exit, reading stdout meanwhile. The exit code, or nothing at the deadline.
    std::optional<int> wait_exit(std::chrono::milliseconds deadline = 10s);

    /// Every stdout line read so far.
    [[nodiscard]] const std::vector<std::string>& lines() const noexcept { return lines_; }
    [[nodiscard]] std::string stdout_text() const;
    [[nodiscard]] std::string stderr_text() const;

    void signal(int signo);
    /// SIGTERM, a grace period, then SIGKILL. The exit code, or -signal.
    int stop(std::chrono::milliseconds grace = 3s);
    [[nodiscard]] bool exited() const noexcept { return exit_code_.has_value(); }

private:
    bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds deadline);
    void start_read();
    void start_wait();

    boost::asio::io_context io_;
    boost::asio::readable_pipe out_;
    std::filesystem::path err_path_;
    std::optional<boost::process::v2::process> proc_;
    char buffer_[4096];
    std::string partial_;
    std::vector<std::string> lines_;
    bool out_closed_ = false;
    std::optional<int> exit_code_;
};

/// A fresh directory under the temp directory, removed by the destructor.
struct temp_dir {
    temp_dir();
    ~temp_dir();
    std::filesystem::path path;
};

} // namespace slotbus::test
