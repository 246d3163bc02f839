#include "child.hpp"

#include <boost/asio/read.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/stdio.hpp>
// Boost 1.81 leaves this definition out of the header-only build.
#include <boost/process/v2/impl/environment.ipp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <grp.h>
#include <random>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

// A test killed half-way must not leave its hosts and peers behind: each
// child gets SIGKILL when the test process dies.
// With `as`, it becomes that user first (which clears a death signal set before).
struct die_with_parent {
    std::optional<slotbus::test::run_as> as;

    boost::process::v2::error_code on_exec_setup(boost::process::v2::posix::default_launcher&,
                                                 const boost::process::v2::filesystem::path&,
                                                 const char* const*)
    {
        if (as) {
            const std::vector<gid_t> groups(as->groups.begin(), as->groups.end());
            if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(as->gid) != 0 ||
                ::setuid(as->uid) != 0)
                return {errno, boost::system::system_category()};
        }
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        return {};
    }
};

} // namespace

namespace slotbus::test {

namespace bp = boost::process::v2;

child::child(const std::string& exe, const std::vector<std::string>& args,
             const std::vector<std::string>& env, std::optional<run_as> as)
    : out_(io_)
{
    static std::atomic<int> counter{0};
    err_path_ =
        std::filesystem::temp_directory_path() /
        ("slotbus-child-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".err");
    std::vector<std::string> environment;
    for (char** e = environ; *e; ++e)
        environment.emplace_back(*e);
    for (const auto& extra : env) {
        const auto key = extra.substr(0, extra.find('=') + 1);
        std::erase_if(environment, [&](const std::string& v) { return v.starts_with(key); });
        environment.push_back(extra);
    }
    FILE* err = std::fopen(err_path_.c_str(), "w");
    proc_.emplace(io_, exe, args, bp::process_stdio{{}, out_, err},
                  bp::process_environment(environment), die_with_parent{std::move(as)});
    std::fclose(err);
    start_read();
    start_wait();
}

child::~child()
{
    if (!exit_code_)
        stop(1s);
    std::error_code ignored;
    std::filesystem::remove(err_path_, ignored);
}

int child::pid() const
{
    return proc_->id();
}

void child::start_read()
{
    out_.async_read_some(
        boost::asio::buffer(buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
            if (ec) {
                out_closed_ = true;
                if (!partial_.empty())
                    lines_.push_back(std::move(partial_));
                return;
            }
            partial_.append(buffer_, n);
            for (auto at = partial_.find('\n'); at != std::string::npos; at = partial_.find('\n')) {
                lines_.push_back(partial_.substr(0, at));
                partial_.erase(0, at + 1);
            }
            start_read();
        });
}

void child::start_wait()
{
    proc_->async_wait([this](const boost::system::error_code& ec, int code) {
        if (!ec) {
            exit_code_ = code;
            return;
        }
        // Reaped elsewhere or not waitable: ask the kernel directly.
        int status = 0;
        if (::waitpid(proc_->id(), &status, 0) > 0)
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        else
            exit_code_ = -1;
    });
}

bool child::pump_until(const std::function<bool()>& done, std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until)
            return false;
        if (io_.stopped())
            io_.restart();
        io_.run_one_until(until);
    }
    return true;
}

bool child::wait_for_line(std::string_view needle, std::chrono::milliseconds deadline)
{
    return wait_for_lines(needle, 1, deadline);
}

bool child::wait_for_lines(std::string_view needle, std::size_t count,
                           std::chrono::milliseconds deadline)
{
    auto found = [&] {
        std::size_t n = 0;
        for (const auto& line : lines_)
            if (line.find(needle) != std::string::npos)
                ++n;
        return n >= count;
    };
    return pump_until([&] { return found() || (out_closed_ && exit_code_); }, deadline) && found();
}

std::optional<int> child::wait_exit(std::chrono::milliseconds deadline)
{
    pump_until([&] { return exit_code_.has_value() && out_closed_; }, deadline);
    return exit_code_;
}

std::string child::stdout_text() const
{
    std::string all;
    for (const auto& line : lines_)
        all += line + '\n';
    return all;
}

std::string child::stderr_text() const
{
    std::ifstream in(err_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void child::signal(int signo)
{
    if (!exit_code_)
        ::kill(proc_->id(), signo);
}

int child::stop(std::chrono::milliseconds grace)
{
    if (!exit_code_) {
        signal(SIGTERM);
        if (!wait_exit(grace)) {
            signal(SIGKILL);
            wait_exit(5s);
        }
    }
    return exit_code_.value_or(-1);
}

temp_dir::temp_dir()
{
    std::random_device random;
    path = std::filesystem::temp_directory_path() /
           ("slotbus-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(path);
    // Private, as slotbusd wants the directory of its socket.
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
}

temp_dir::~temp_dir()
{
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
}

} // namespace slotbus::test
