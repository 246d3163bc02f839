#define BOOST_TEST_MODULE host
// slotbusd as an operator sees it: ready line, socket mode, signals, help,
// one host per socket, stale sockets, the default address.
#include "host_fixture.hpp"

#include <slotbus/slotbus.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace slotbus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(socket_is_private_and_peers_are_identified)
{
    test::host host;
    struct stat st {};
    BOOST_REQUIRE(::stat(host.socket().c_str(), &st) == 0);
    BOOST_TEST(S_ISSOCK(st.st_mode));
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    connection bus;
    bus.connect(host.socket());
    auto slot = server_slot::create(bus, "who"); // a round trip: the connection is logged by now
    BOOST_TEST(host.log().find("from pid " + std::to_string(::getpid())) != std::string::npos,
               host.log());
}

BOOST_AUTO_TEST_CASE(sigterm_and_sigint_stop_gracefully_and_remove_the_socket)
{
    for (int signo : {SIGTERM, SIGINT}) {
        test::temp_dir dir;
        const auto socket = (dir.path / "bus.sock").string();
        test::child host(SLOTBUSD_PATH, {"--socket", socket});
        BOOST_REQUIRE(host.wait_for_line("ready on " + socket));
        connection bus;
        bus.connect(socket);
        auto slot = server_slot::create(bus, "busy");
        host.signal(signo);
        BOOST_TEST(host.wait_exit(5s).value_or(-999) == 0);
        BOOST_TEST(!fs::exists(socket));
        std::error_code ec;
        (void)slot.read(ec);
        BOOST_TEST(ec == error::broken_pipe);    // clients learn the host is gone
        BOOST_TEST(!bus.last_failure().empty()); // and why: the socket's words
    }
}

BOOST_AUTO_TEST_CASE(help_documents_every_option)
{
    test::child help(SLOTBUSD_PATH, {"--help"});
    BOOST_TEST(help.wait_exit(5s).value_or(-999) == 0);
    const auto text = help.stdout_text();
    for (auto option :
         {"--socket", "--max-record-size", "--slot-budget", "--max-slot-budget", "--max-handles",
          "--push-window", "--push-bytes", "--max-outbox", "--domain", "--verbose", "--help",
          "--max-subscriptions", "--topic-types", "--max-held", "--max-connections",
          "--max-connections-per-uid", "--hello-timeout", "--stall-timeout"})
        BOOST_TEST(text.find(option) != std::string::npos, option);
    test::child wrong(SLOTBUSD_PATH, {"--no-such-option"});
    BOOST_TEST(wrong.wait_exit(5s).value_or(-999) == 2);
}

BOOST_AUTO_TEST_CASE(refuses_a_socket_where_a_live_host_answers)
{
    test::host first;
    test::child second(SLOTBUSD_PATH, {"--socket", first.socket()});
    BOOST_TEST(second.wait_exit(5s).value_or(-999) == 1);
    // One line says so, not two.
    BOOST_TEST(second.stderr_text() == "slotbusd: another host is running on " + first.socket() +
                                           "; not starting a second\n",
               second.stderr_text());
    // The first host is untouched.
    connection bus;
    bus.connect(first.socket());
    BOOST_TEST(server_slot::create(bus, "still/mine").is_open());
}

BOOST_AUTO_TEST_CASE(replaces_the_stale_socket_of_a_dead_host)
{
    test::temp_dir dir;
    const auto socket = (dir.path / "bus.sock").string();
    {
        // A socket file nobody listens on, as a killed host leaves behind.
        boost::asio::io_context io;
        boost::asio::local::stream_protocol::acceptor stale(
            io, boost::asio::local::stream_protocol::endpoint(socket));
    }
    BOOST_REQUIRE(fs::exists(socket));
    test::child host(SLOTBUSD_PATH, {"--socket", socket});
    BOOST_TEST(host.wait_for_line("ready on"));
    BOOST_TEST(host.stderr_text().find("stale") != std::string::npos);
    connection bus;
    bus.connect(socket);
    BOOST_TEST(server_slot::create(bus, "fresh").is_open());
    BOOST_TEST(host.stop() == 0);
}

BOOST_AUTO_TEST_CASE(refuses_a_path_that_is_not_a_socket)
{
    test::temp_dir dir;
    const auto path = dir.path / "bus.sock";
    {
        std::ofstream(path) << "precious";
    }
    test::child host(SLOTBUSD_PATH, {"--socket", path.string()});
    BOOST_TEST(host.wait_exit(5s).value_or(-999) == 1);
    BOOST_TEST(fs::file_size(path) == 8u); // not deleted

    // A file in a directory that is not the host's (`--socket /etc/passwd`):
    // one line about the file, not advice about the directory.
    const auto shared = dir.path / "etc";
    fs::create_directories(shared);
    fs::permissions(shared, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
    {
        std::ofstream(shared / "passwd") << "root:x:0:0";
    }
    test::child wrong(SLOTBUSD_PATH, {"--socket", (shared / "passwd").string()});
    BOOST_TEST(wrong.wait_exit(5s).value_or(-999) == 1);
    BOOST_TEST(wrong.stderr_text() ==
                   "slotbusd: refusing to start: " + (shared / "passwd").string() +
                       " exists and is not a socket; choose another --socket\n",
               wrong.stderr_text());
    BOOST_TEST(fs::file_size(shared / "passwd") == 10u);
}

BOOST_AUTO_TEST_CASE(default_socket_under_xdg_runtime_dir_and_slotbus_address)
{
    test::temp_dir dir;
    const std::string runtime = "XDG_RUNTIME_DIR=" + dir.path.string();
    test::child host(SLOTBUSD_PATH, {}, {runtime});
    const auto expected = (dir.path / "slotbus" / "bus.sock").string();
    BOOST_REQUIRE(host.wait_for_line("ready on " + expected));
    // Plugins find it through SLOTBUS_ADDRESS, as the supervisor will set it.
    test::child reader(SLOTBUS_PEER_PATH, {"create", "found/you", "--count", "0"},
                       {"SLOTBUS_ADDRESS=" + expected});
    BOOST_TEST(reader.wait_exit(5s).value_or(-999) == 0);
    BOOST_TEST(reader.stdout_text().find("created") != std::string::npos);
    BOOST_TEST(host.stop() == 0);
}

BOOST_AUTO_TEST_CASE(no_host_is_a_clear_connect_error)
{
    test::temp_dir dir;
    connection bus;
    std::error_code ec;
    bus.connect((dir.path / "nobody.sock").string(), ec);
    BOOST_TEST((ec == std::errc::no_such_file_or_directory), ec.message());
}

// The output bound (--max-outbox) pauses reading a connection while its
// output waits, and only then: once a flush larger than the bound is sent,
// the host reads that connection again.
BOOST_AUTO_TEST_CASE(a_connection_is_read_again_after_an_admin_answer_over_the_output_bound)
{
    test::host host({"--max-outbox", "65536"});
    connection bus;
    bus.connect(host.socket());
    std::vector<server_slot> slots;
    const std::string padding(100, 'x');
    for (int i = 0; i < 1000; ++i) // a listing of ~200 KiB: over the bound, within a frame
        slots.push_back( // the least budget each: 1000 of them stay within the host's caps
            server_slot::create(bus, "big/" + padding + std::to_string(i), slot_options{0, 0, 1}));
    BOOST_REQUIRE(list_slots(bus).size() == 1000u); // in pages, each over the bound
    // The next call on the same connection is answered (it used to wait for good).
    bool answered = false;
    async_admin(bus, "stats", "", [&](boost::system::error_code ec, boost::json::value) {
        answered = !ec;
        bus.stop();
    });
    bus.run_for(5s);
    BOOST_TEST(answered);
}

BOOST_AUTO_TEST_CASE(many_pushed_slots_on_one_connection_keep_flowing)
{
    // 16 subscriber slots of one connection, each pushed up to --push-bytes
    // (1 MiB) ahead of its reads, and a quarter of that again for each read
    // report: flushes carry more than --max-outbox (1 MiB here; the default
    // 8 MiB needs ~64 such slots), and the readers' reports must still be read.
    test::host host({"--max-outbox", "1048576"});
    connection reader_bus, writer_bus;
    reader_bus.connect(host.socket());
    writer_bus.connect(host.socket());
    constexpr int slot_count = 16, records = 4000;
    std::vector<server_slot> slots;
    std::vector<subscription> subscriptions;
    for (int i = 0; i < slot_count; ++i) {
        slots.push_back(server_slot::create(reader_bus, "fan/" + std::to_string(i), 0, 10'000));
        subscriptions.push_back(slots.back().subscribe("fan/feed"));
    }
    // All is written (within each slot's budget) before the reader starts:
    // the host's output to it piles up past the bound while it does not read.
    auto feed = client_slot::open(writer_bus, "fan/feed");
    const std::string record(1024, 'r');
    for (int i = 0; i < records; ++i)
        (void)feed.async_write(boost::asio::buffer(record), boost::asio::detached);
    BOOST_REQUIRE(feed.write("last") == static_cast<std::uint32_t>(slot_count));
    int read = 0;
    std::error_code ec;
    for (int n = 0; n < records + 1 && !ec; ++n)
        for (auto& slot : slots) {
            (void)slot.read(ec); // a 10 s timeout: a stalled connection fails here
            if (ec)
                break;
            ++read;
        }
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(read == slot_count * (records + 1));
}

// Safe paths: the socket's directory is the host's own, mode 0700, or it does
// not start; its pid and log files are never written through a symlink.
namespace {

std::string read_file(const fs::path& p)
{
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

unsigned mode_of(const fs::path& p)
{
    struct stat st {};
    BOOST_REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_daemon_makes_its_socket_directory_private)
{
    test::temp_dir dir;
    test::child host(SLOTBUSD_PATH, {"--daemon"}, {"XDG_RUNTIME_DIR=" + dir.path.string()});
    BOOST_REQUIRE(host.wait_exit(10s).value_or(-999) == 0);
    const auto socket = dir.path / "slotbus" / "bus.sock";
    BOOST_TEST(mode_of(socket.parent_path()) == 0700u); // was 0755 with --daemon
    BOOST_TEST(mode_of(socket.parent_path() / "slotbusd.log") == 0600u);
    connection bus;
    bus.connect(socket.string());
    (void)admin(bus, "stop");
    BOOST_TEST(test::eventually([&] { return !fs::exists(socket); }));
}

BOOST_AUTO_TEST_CASE(refuses_a_socket_directory_others_can_enter)
{
    for (const bool daemon : {false, true}) {
        test::temp_dir dir;
        const auto shared = dir.path / "shared";
        fs::create_directories(shared);
        fs::permissions(shared, fs::perms::owner_all | fs::perms::group_read |
                                    fs::perms::group_exec | fs::perms::others_read |
                                    fs::perms::others_exec);
        std::vector<std::string> args{"--socket", (shared / "bus.sock").string()};
        if (daemon)
            args.push_back("--daemon");
        test::child host(SLOTBUSD_PATH, args);
        BOOST_TEST(host.wait_exit(5s).value_or(-999) == 1);
        BOOST_TEST(host.stderr_text().find("has mode 0755; it must be 0700") != std::string::npos,
                   host.stderr_text());
        BOOST_TEST(!fs::exists(shared / "bus.sock"));
        BOOST_TEST(!fs::exists(shared / "slotbusd.log"));
    }
}

BOOST_AUTO_TEST_CASE(refuses_a_socket_directory_another_user_made)
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: giving a directory to another uid needs root");
        return;
    }
    // What another local user can do to a root host that uses /tmp: make the
    // directory first, with symlinks to root's files where the host writes.
    test::temp_dir dir;
    const auto squat = dir.path / "slotbus-0";
    fs::create_directories(squat);
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_exec);
    std::ofstream(dir.path / "precious") << "root's";
    fs::create_symlink(dir.path / "precious", squat / "slotbusd.pid");
    fs::create_symlink(dir.path / "precious", squat / "slotbusd.log");
    BOOST_REQUIRE(::chown(squat.c_str(), 65534, 65534) == 0);
    test::child host(SLOTBUSD_PATH, {"--daemon", "--socket", (squat / "bus.sock").string()});
    BOOST_TEST(host.wait_exit(5s).value_or(-999) == 1);
    BOOST_TEST(host.stderr_text().find("belongs to uid 65534") != std::string::npos,
               host.stderr_text());
    BOOST_TEST(read_file(dir.path / "precious") == "root's");
    BOOST_TEST(!fs::exists(squat / "bus.sock"));
}

BOOST_AUTO_TEST_CASE(pid_and_log_files_are_never_written_through_a_symlink)
{
    test::temp_dir dir;
    std::ofstream(dir.path / "precious") << "keep";
    // The pid file's temporary and the pid file itself are symlinks: both are replaced.
    fs::create_symlink(dir.path / "precious", dir.path / "host.pid.tmp");
    fs::create_symlink(dir.path / "precious", dir.path / "host.pid");
    const auto socket = (dir.path / "bus.sock").string();
    {
        test::child host(SLOTBUSD_PATH,
                         {"--socket", socket, "--pid-file", (dir.path / "host.pid").string()});
        BOOST_REQUIRE(host.wait_for_line("ready on"));
        BOOST_TEST(read_file(dir.path / "precious") == "keep");
        BOOST_TEST(fs::is_regular_file(fs::symlink_status(dir.path / "host.pid")));
        BOOST_TEST(read_file(dir.path / "host.pid") == std::to_string(host.pid()) + "\n");
        BOOST_TEST(host.stop() == 0);
    }
    // A log file that is a symlink: the host refuses to start.
    fs::create_symlink(dir.path / "precious", dir.path / "host.log");
    test::child host(SLOTBUSD_PATH,
                     {"--socket", socket, "--log-file", (dir.path / "host.log").string()});
    BOOST_TEST(host.wait_exit(5s).value_or(-999) == 1);
    BOOST_TEST(host.stderr_text().find("host.log") != std::string::npos, host.stderr_text());
    BOOST_TEST(read_file(dir.path / "precious") == "keep");
}

BOOST_AUTO_TEST_CASE(a_client_refuses_a_host_of_another_user)
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: listening as another uid needs root");
        return;
    }
    // A socket another user listens on, where this user's host would be.
    test::temp_dir dir;
    fs::permissions(dir.path, fs::perms::all);
    const auto socket = (dir.path / "bus.sock").string();
    int ready[2];
    BOOST_REQUIRE(::pipe(ready) == 0);
    const pid_t impostor = ::fork();
    if (impostor == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(1);
        boost::asio::io_context io;
        boost::asio::local::stream_protocol::acceptor listening(
            io, boost::asio::local::stream_protocol::endpoint(socket));
        [[maybe_unused]] auto n = ::write(ready[1], "r", 1);
        ::pause();
        ::_exit(0);
    }
    char byte = 0;
    BOOST_REQUIRE(::read(ready[0], &byte, 1) == 1);
    connection bus;
    std::error_code ec;
    bus.connect(socket, ec);
    BOOST_TEST((ec == error::access_denied), ec.message());
    BOOST_TEST(bus.last_failure().find(socket) != std::string::npos, bus.last_failure());
    BOOST_TEST(bus.last_failure().find("uid 65534") != std::string::npos, bus.last_failure());
    // The CLI says so too.
    test::child cli(SLOTBUS_CLI_PATH, {"ls"}, {"SLOTBUS_ADDRESS=" + socket});
    BOOST_TEST(cli.wait_exit(10s).value_or(-999) != 0);
    BOOST_TEST(cli.stderr_text().find("uid 65534") != std::string::npos, cli.stderr_text());
    ::kill(impostor, SIGKILL);
    ::waitpid(impostor, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
}
