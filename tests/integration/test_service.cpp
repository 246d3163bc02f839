// slotbusd as a service: --daemon with its pid and log files, one host per
// socket, systemd's readiness protocol, and log files that logrotate can move.
#define BOOST_TEST_MODULE service
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

using namespace slotbus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string text_of(const fs::path& file)
{
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// A daemon is nobody's child: kill it if a test ends early.
struct daemon_guard {
    fs::path pid_file;
    ~daemon_guard()
    {
        std::ifstream in(pid_file);
        int pid = 0;
        if (in >> pid && pid > 0)
            ::kill(pid, SIGKILL);
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(daemon_returns_once_ready_with_pid_and_log_files)
{
    test::temp_dir run, plugins;
    test::write_manifest(plugins.path, "quiet",
                         std::string(R"({"name": "quiet", "executable": ")") + SLOTBUS_PEER_PATH +
                             R"(", "args": ["create", "plugins/quiet/d"]})");
    const auto socket = (run.path / "bus.sock").string();
    daemon_guard guard{run.path / "slotbusd.pid"};

    test::child start(SLOTBUSD_PATH,
                      {"--daemon", "--socket", socket, "--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(start.wait_exit(10s).value_or(-1) == 0);
    // The foreground process waited for the daemon's word before returning.
    BOOST_TEST(start.stdout_text().find("slotbusd: ready on " + socket + " (pid ") == 0u);
    const int pid = std::stoi(text_of(run.path / "slotbusd.pid"));
    BOOST_TEST(test::alive(pid));
    BOOST_TEST(start.stdout_text().find("(pid " + std::to_string(pid) + ")") != std::string::npos);
    BOOST_TEST(fs::exists(socket));

    // The log file gets the host's lines and its plugins' output.
    BOOST_TEST(test::eventually([&] {
        return text_of(run.path / "slotbusd.log").find("[quiet] created") != std::string::npos;
    }));

    // A second host on the same socket refuses, and says why.
    test::child second(SLOTBUSD_PATH, {"--daemon", "--socket", socket});
    BOOST_TEST(second.wait_exit(10s).value_or(-1) == 1);
    BOOST_TEST(second.stderr_text().find("another host is running on " + socket +
                                         "; not starting a second") != std::string::npos);
    BOOST_TEST(std::stoi(text_of(run.path / "slotbusd.pid")) == pid); // untouched

    // SIGTERM: plugins stopped, socket and pid file removed.
    ::kill(pid, SIGTERM);
    BOOST_TEST(test::eventually([&] { return !test::alive(pid); }));
    BOOST_TEST(!fs::exists(socket));
    BOOST_TEST(!fs::exists(run.path / "slotbusd.pid"));
    BOOST_TEST(text_of(run.path / "slotbusd.log").find("slotbusd: stopped") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(daemon_reports_a_failed_start)
{
    // (A failure after it went to the background, a socket in use, is above.)
    test::temp_dir run;
    std::ofstream(run.path / "not-a-socket") << "a file";
    test::child start(SLOTBUSD_PATH, {"--daemon", "--socket", (run.path / "not-a-socket").string(),
                                      "--pid-file", (run.path / "pid").string()});
    BOOST_TEST(start.wait_exit(10s).value_or(-1) == 1);
    BOOST_TEST(start.stderr_text().find("exists and is not a socket") != std::string::npos,
               start.stderr_text());
    BOOST_TEST(!fs::exists(run.path / "pid"));
}

BOOST_AUTO_TEST_CASE(tells_systemd_when_it_is_ready_and_when_it_stops)
{
    namespace asio = boost::asio;
    test::temp_dir run;
    asio::io_context io;
    const auto notify_path = (run.path / "notify").string();
    asio::local::datagram_protocol::socket notify(
        io, asio::local::datagram_protocol::endpoint(notify_path));
    test::child host(SLOTBUSD_PATH, {"--socket", (run.path / "bus.sock").string()},
                     {"NOTIFY_SOCKET=" + notify_path});
    BOOST_REQUIRE(host.wait_for_line("ready on"));
    auto receive = [&] {
        std::string message;
        char buffer[256];
        notify.async_receive(asio::buffer(buffer),
                             [&](boost::system::error_code ec, std::size_t n) {
                                 if (!ec)
                                     message.assign(buffer, n);
                             });
        io.restart();
        io.run_for(5s);
        return message;
    };
    BOOST_TEST(receive() == "READY=1\nMAINPID=" + std::to_string(host.pid()));
    host.signal(SIGTERM);
    BOOST_TEST(receive() == "STOPPING=1");
    BOOST_TEST(host.wait_exit().value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(log_lines_carry_a_level_and_reach_the_journal_with_their_priority)
{
    test::temp_dir run;
    const auto socket = (run.path / "bus.sock").string();
    // Under systemd, $JOURNAL_STREAM names the stream stderr is: the host
    // then gives each line syslog's <N> prefix, which the journal takes as
    // its priority (and keeps the time itself). Here stderr is the test's
    // pipe, named the way systemd would name it.
    fs::create_directories(run.path / "plugins");
    test::write_manifest(run.path / "plugins", "broken", R"({"name": "broken"})");
    test::child host("/bin/sh",
                     {"-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" \"$@\"",
                      SLOTBUSD_PATH, "--socket", socket, "--verbose", "--plugins-dir",
                      (run.path / "plugins").string()});
    BOOST_REQUIRE(host.wait_for_line("ready on"));
    {
        connection bus;
        bus.connect(socket);
    }
    BOOST_TEST(test::eventually([&] {
                   return host.stderr_text().find("<6>slotbusd: connection 1 from pid ") !=
                          std::string::npos;
               }),
               host.stderr_text());
    BOOST_TEST(host.stderr_text().find("<4>slotbusd: plugin manifest ") != std::string::npos,
               host.stderr_text());
    BOOST_TEST(host.stop() == 0);

    // Elsewhere (a terminal, --log-file): a UTC timestamp and the level's name.
    test::child plain(SLOTBUSD_PATH, {"--socket", socket, "--verbose"}, {"JOURNAL_STREAM=1:2"});
    BOOST_REQUIRE(plain.wait_for_line("ready on"));
    {
        connection bus;
        bus.connect(socket);
    }
    BOOST_TEST(test::eventually([&] {
                   return std::regex_search(
                       plain.stderr_text(),
                       std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info )"
                                  R"(slotbusd: connection 1 from pid )"));
               }),
               plain.stderr_text());
    BOOST_TEST(plain.stop() == 0);
}

BOOST_AUTO_TEST_CASE(sighup_reopens_the_log_file_after_it_was_moved)
{
    test::temp_dir run;
    const auto log = run.path / "host.log";
    test::child host(SLOTBUSD_PATH,
                     {"--socket", (run.path / "bus.sock").string(), "--log-file", log.string()});
    BOOST_REQUIRE(host.wait_for_line("ready on"));
    fs::rename(log, run.path / "host.log.1"); // what logrotate does
    host.signal(SIGHUP);
    BOOST_TEST(test::eventually([&] {
        return text_of(log).find("SIGHUP: no plugins directory to reload") != std::string::npos;
    }));
    BOOST_TEST(host.stop() == 0);
    BOOST_TEST(text_of(log).find("slotbusd: stopped") != std::string::npos);
}
