// The plugin supervisor, observed from outside: real slotbusd processes run
// real plugin processes from manifests; the tests look through the CLI, the
// host's log and the kernel's process table.
#define BOOST_TEST_MODULE plugins
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

/// A test peer as a plugin; these tests are about supervision, so it may
/// create, write and read any name (least privilege has tests of its own).
std::string peer_manifest(const std::string& name, const std::string& args,
                          const std::string& extra = "")
{
    return R"({"name": ")" + name + R"(", "executable": ")" + SLOTBUS_PEER_PATH + R"(", "args": )" +
           args + R"(, "permissions": [{"allow": ["create", "write", "read"]}])" + extra + "}";
}

using test::plugin_entry;

int pid_of(const test::host& h, const std::string& name)
{
    const auto p = plugin_entry(h, name);
    return p.is_null() ? 0 : static_cast<int>(p.at("pid").to_number<std::int64_t>());
}

bool state_is(const test::host& h, const std::string& name, std::string_view state)
{
    const auto p = plugin_entry(h, name);
    return !p.is_null() && p.at("state").as_string() == state;
}

/// The owner pid `slotbus ls --json` shows for a slot, or 0 when there is no such slot.
int slot_owner_pid(const test::host& h, const std::string& path, std::string* plugin = nullptr)
{
    const auto answer = test::cli(h, {"ls", "--json"}).json();
    for (const auto& s : answer.at("slots").as_array())
        if (fold_case(s.at("path").as_string()) == fold_case(path)) {
            if (plugin)
                *plugin = std::string(s.at("owner").at("plugin").as_string());
            return static_cast<int>(s.at("owner").at("pid").to_number<std::int64_t>());
        }
    return 0;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_crashing_plugin_is_restarted_with_back_off_and_its_slot_comes_back)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "crasher",
                         peer_manifest("crasher", R"(["create", "plugins/crasher/inbox"])",
                                       R"(, "restart": "on-failure", "backoff_ms": 150,
                                          "backoff_max_ms": 1000, "max_restarts": 2)"));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "crasher", "running"); }));
    int pid = pid_of(h, "crasher");
    std::string owner;
    BOOST_REQUIRE(test::eventually(
        [&] { return slot_owner_pid(h, "plugins\\crasher\\inbox", &owner) == pid; }));
    BOOST_TEST(owner == "crasher"); // the token names the plugin that owns the slot

    // Three crashes: two restarts (after 150 ms, then 300 ms), then it is left failed.
    for (int crash = 1; crash <= 3; ++crash) {
        ::kill(pid, SIGKILL);
        if (crash == 3)
            break;
        BOOST_REQUIRE(test::eventually([&] {
            const int now = pid_of(h, "crasher");
            return now != 0 && now != pid && state_is(h, "crasher", "running");
        }));
        pid = pid_of(h, "crasher");
        // The restarted plugin re-created its slot, under its new pid.
        BOOST_REQUIRE(
            test::eventually([&] { return slot_owner_pid(h, "plugins\\crasher\\inbox") == pid; }));
    }
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "crasher", "failed"); }));
    const auto entry = plugin_entry(h, "crasher");
    BOOST_TEST(entry.at("restarts").to_number<int>() == 2);
    BOOST_TEST(entry.at("last_exit").at("signal").to_number<int>() == SIGKILL);
    BOOST_TEST(slot_owner_pid(h, "plugins\\crasher\\inbox") == 0); // gone with its reader
    const auto log = h.log();
    BOOST_TEST(log.find("crasher: restarting in 150 ms (restart 1 of at most 2)") !=
               std::string::npos);
    BOOST_TEST(log.find("crasher: restarting in 300 ms (restart 2 of at most 2)") !=
               std::string::npos);
    BOOST_TEST(log.find("crasher: gave up after 2 restarts") != std::string::npos);
    // Its output is in the host's log, prefixed with its name.
    BOOST_TEST(log.find("[crasher] created") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sigkill_mid_stream_loses_nothing_queued_for_other_slots)
{
    test::temp_dir plugins;
    test::host h({"--plugins-dir", plugins.path.string()});
    connection bus;
    bus.connect(h.socket());
    slot_options options;
    options.read_timeout = 0;
    options.byte_budget = 512u << 10; // the writer is held back, mid-stream, when it is full
    auto sink = server_slot::create(bus, "tests/sink", options);
    auto other = server_slot::create(bus, "tests/other", options);
    {
        connection writer;
        writer.connect(h.socket());
        auto to_other = client_slot::open(writer, "tests/other");
        for (int i = 0; i < 10; ++i)
            to_other.write(boost::asio::buffer("other-" + std::to_string(i)));
    }
    test::write_manifest(plugins.path, "streamer",
                         peer_manifest("streamer",
                                       R"(["write", "tests/sink", "--count", "100000",
                                           "--prefix", "k", "--size", "64"])",
                                       R"(, "restart": "never")"));
    ::kill(h.process().pid(), SIGHUP);
    BOOST_REQUIRE(test::eventually([&] { return sink.info().message_count > 3000; }));
    const int pid = pid_of(h, "streamer");
    BOOST_TEST(sink.info().message_count < 100000u); // it is still writing
    BOOST_REQUIRE(pid > 0);
    ::kill(pid, SIGKILL);
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "streamer", "stopped"); }));

    // Every record that reached the sink is there, whole and in order, up to the cut.
    const auto queued = sink.info().message_count;
    for (std::uint32_t i = 0; i < queued; ++i) {
        auto text = sink.read();
        BOOST_REQUIRE_EQUAL(text.size(), 64u);
        const auto expected = "k-" + std::to_string(i);
        BOOST_REQUIRE_EQUAL(text.substr(0, text.find('.')), expected);
    }
    std::error_code ec;
    (void)sink.read(ec);
    BOOST_TEST((ec == error::sem_timeout));
    // The other slot is untouched.
    BOOST_TEST(other.info().message_count == 10u);
    for (int i = 0; i < 10; ++i)
        BOOST_TEST(other.read() == "other-" + std::to_string(i));
}

BOOST_AUTO_TEST_CASE(shutdown_leaves_no_plugin_process_alive)
{
    test::temp_dir plugins;
    // One that ignores SIGTERM and has children of its own, one of them with a
    // child in turn; one that behaves.
    const auto script = plugins.path / "stubborn.sh";
    std::ofstream(script) << "#!/bin/sh\ntrap '' TERM\n"
                             "for i in 1 2 3 4 5 6 7 8; do sleep 600 & echo \"child $!\"; done\n"
                             "sh -c 'sleep 600 & echo \"child $!\"; wait' &\n"
                             "wait\n";
    fs::permissions(script, fs::perms::owner_all);
    test::write_manifest(plugins.path, "stubborn",
                         R"({"name": "stubborn", "executable": "stubborn.sh",
                             "stop_timeout_ms": 300})");
    test::write_manifest(plugins.path, "polite",
                         peer_manifest("polite", R"(["create", "plugins/polite"])"));
    auto h = std::make_unique<test::host>(
        std::vector<std::string>{"--plugins-dir", plugins.path.string()});
    const auto descendants = [&] {
        std::vector<int> pids;
        const auto log = h->log();
        for (auto at = log.find("[stubborn] child "); at != std::string::npos;
             at = log.find("[stubborn] child ", at + 1))
            pids.push_back(std::stoi(log.substr(at + 17)));
        return pids;
    };
    BOOST_REQUIRE(test::eventually([&] {
        return state_is(*h, "stubborn", "running") && state_is(*h, "polite", "running") &&
               descendants().size() == 9;
    }));
    const int stubborn = pid_of(*h, "stubborn");
    const int polite = pid_of(*h, "polite");
    BOOST_REQUIRE(test::alive(stubborn) && test::alive(polite));
    for (const int pid : descendants())
        BOOST_REQUIRE(test::alive(pid));

    const int code = h->process().stop(10s);
    BOOST_TEST(code == 0);
    BOOST_TEST(!test::alive(stubborn));
    BOOST_TEST(!test::alive(polite));
    for (const int pid : descendants())
        BOOST_TEST(!test::alive(pid), "descendant " << pid << " outlived the host");
    const auto final_log = h->log();
    BOOST_TEST(final_log.find("stubborn: still running 300 ms after SIGTERM; sending SIGKILL") !=
               std::string::npos);
    BOOST_TEST(final_log.find("plugin polite: pid " + std::to_string(polite) +
                              " killed by signal 15") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_orphan_that_left_its_plugins_group_is_reaped_not_left_a_zombie)
{
    test::temp_dir plugins;
    // The plugin starts a process in a session of its own (out of reach of its
    // group's SIGKILL) and exits; the orphan comes to the host, its subreaper.
    const auto script = plugins.path / "escaper.sh";
    std::ofstream(script) << "#!/bin/sh\n"
                             "setsid sh -c 'echo \"escaped $$\"; exec sleep 0.5' &\n"
                             "sleep 0.1\n";
    fs::permissions(script, fs::perms::owner_all);
    test::write_manifest(plugins.path, "escaper",
                         R"({"name": "escaper", "executable": "escaper.sh", "restart": "never"})");
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] {
        return state_is(h, "escaper", "stopped") &&
               h.log().find("[escaper] escaped ") != std::string::npos;
    }));
    const auto log = h.log();
    const int orphan = std::stoi(log.substr(log.find("[escaper] escaped ") + 18));
    // Gone from the process table altogether: no zombie left with the host.
    BOOST_TEST(test::eventually([&] { return !fs::exists("/proc/" + std::to_string(orphan)); }));
    BOOST_TEST(test::alive(h.process().pid()));
}

BOOST_AUTO_TEST_CASE(a_host_killed_outright_takes_its_plugins_with_it)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "orphan", peer_manifest("orphan", R"(["create", "o"])"));
    test::temp_dir run;
    test::child host(SLOTBUSD_PATH, {"--socket", (run.path / "bus.sock").string(), "--plugins-dir",
                                     plugins.path.string()});
    BOOST_REQUIRE(host.wait_for_line("ready on"));
    std::string log;
    BOOST_REQUIRE(test::eventually([&] {
        log = host.stderr_text();
        return log.find("[orphan] created") != std::string::npos;
    }));
    const auto at = log.find("(pid ", log.find("plugin orphan: started"));
    const int pid = std::stoi(log.substr(at + 5));
    BOOST_REQUIRE(test::alive(pid));
    host.signal(SIGKILL);
    BOOST_TEST(test::eventually([&] { return !test::alive(pid); }));
    host.wait_exit(5s);
}

BOOST_AUTO_TEST_CASE(reload_adds_removes_and_restarts_changed_plugins)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "first", peer_manifest("first", R"(["create", "r/first"])"));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "first", "running"); }));
    const int first = pid_of(h, "first");

    test::write_manifest(plugins.path, "second",
                         peer_manifest("second", R"(["create", "r/second"])"));
    ::kill(h.process().pid(), SIGHUP);
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "second", "running"); }));
    BOOST_TEST(pid_of(h, "first") == first); // unchanged: left alone
    const int second = pid_of(h, "second");

    fs::remove(plugins.path / "first.json");
    test::write_manifest(plugins.path, "second",
                         peer_manifest("second", R"(["create", "r/second-v2"])"));
    ::kill(h.process().pid(), SIGHUP);
    BOOST_REQUIRE(test::eventually([&] {
        return plugin_entry(h, "first").is_null() && pid_of(h, "second") != second &&
               state_is(h, "second", "running");
    }));
    BOOST_TEST(test::eventually([&] { return !test::alive(first) && !test::alive(second); }));
    BOOST_TEST(test::eventually([&] { return slot_owner_pid(h, "r\\second-v2") != 0; }));
    BOOST_TEST(slot_owner_pid(h, "r\\first") == 0);
}

BOOST_AUTO_TEST_CASE(an_invalid_manifest_is_named_with_its_field_and_the_rest_start)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "bad-policy",
                         R"({"name": "bad", "executable": "/bin/true", "restart": "sometimes"})");
    test::write_manifest(plugins.path, "no-exe",
                         R"({"name": "noexe", "executable": "no-such-program-here"})");
    test::write_manifest(plugins.path, "typo", R"({"name": "typo", "executabel": "/bin/true"})");
    std::ofstream(plugins.path / "broken.json") << "{ not json";
    test::write_manifest(plugins.path, "good", peer_manifest("good", R"(["create", "g"])"));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "good", "running"); }));
    const auto log = h.log();
    auto logged = [&](const std::string& file, const std::string& text) {
        const auto line = "plugin manifest " + (plugins.path / file).string() + ": " + text;
        BOOST_TEST_CONTEXT(line)
        {
            BOOST_TEST(log.find(line) != std::string::npos);
        }
    };
    logged("bad-policy.json", "field \"restart\" must be \"never\", \"on-failure\" or \"always\"");
    logged("no-exe.json", "field \"executable\" \"no-such-program-here\" is not an executable");
    logged("typo.json", "field \"executabel\" unknown field");
    // JSON that does not parse is placed by line and column, in the log and in `plugins`.
    BOOST_TEST(log.find("plugin manifest " + (plugins.path / "broken.json").string() +
                        ":1:3: not valid JSON") != std::string::npos);
    BOOST_TEST(plugin_entry(h, "bad").is_null());
    const auto listed = test::cli(h, {"plugins", "--json"}).json();
    BOOST_TEST(listed.at("manifest_errors").as_array().size() == 4u);
    const auto table = test::cli(h, {"plugins"}).out;
    BOOST_TEST(table.find("4 manifests were not loaded") != std::string::npos, table);
    BOOST_TEST(table.find("broken.json:1:3: not valid JSON") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(two_hosts_do_not_see_each_others_plugins)
{
    test::temp_dir one_dir, two_dir;
    test::write_manifest(one_dir.path, "alpha", peer_manifest("alpha", R"(["create", "a"])"));
    test::write_manifest(two_dir.path, "beta", peer_manifest("beta", R"(["create", "b"])"));
    test::host one({"--plugins-dir", one_dir.path.string()});
    test::host two({"--plugins-dir", two_dir.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return state_is(one, "alpha", "running"); }));
    BOOST_REQUIRE(test::eventually([&] { return state_is(two, "beta", "running"); }));
    BOOST_TEST(plugin_entry(one, "beta").is_null());
    BOOST_TEST(plugin_entry(two, "alpha").is_null());
    BOOST_TEST(slot_owner_pid(one, "b") == 0);
    BOOST_TEST(slot_owner_pid(two, "a") == 0);
}

BOOST_AUTO_TEST_CASE(a_token_the_host_did_not_issue_is_refused)
{
    test::host h;
    connection_options options;
    options.plugin_token = "0123456789abcdef0123456789abcdef";
    connection impostor(options);
    std::error_code ec;
    impostor.connect(h.socket(), ec);
    BOOST_TEST((ec == error::invalid_handle));
    BOOST_TEST(impostor.last_failure().find("unknown plugin token") != std::string::npos);
    // Without a token, a client is just a client.
    connection plain(connection_options{"plain", 256, ""});
    plain.connect(h.socket());
    BOOST_TEST(plain.plugin_name().empty());
}

BOOST_AUTO_TEST_CASE(a_plugin_publishes_under_the_name_its_token_gives_it)
{
    test::temp_dir plugins;
    // The metrics plugin asks to be called "metrics"; the manifest's name wins.
    test::write_manifest(plugins.path, "hoststats",
                         std::string(R"({"name": "hoststats", "executable": ")") +
                             SLOTBUS_METRICS_PATH +
                             R"(", "args": ["--topic", "watch/stats", "--interval", "50"],
                                   "permissions": [{"allow": ["write"], "names": ["watch/**"]},
                                                   {"allow": ["list"]}]})");
    test::host h({"--plugins-dir", plugins.path.string()});
    connection bus;
    bus.connect(h.socket());
    auto inbox = server_slot::create(bus, "tests/watch", 0, 5000);
    auto sub = inbox.subscribe("watch/**");
    std::error_code ec;
    const auto e = parse_envelope(inbox.read(), ec);
    BOOST_REQUIRE(!ec);
    BOOST_TEST(e.source == "/plugins/hoststats");
    BOOST_TEST(e.type == "slotbus.host.stats");
}

BOOST_AUTO_TEST_CASE(a_plugin_inherits_no_descriptor_of_the_host)
{
    test::temp_dir plugins;
    // ls lists its own descriptors: 0-2, and 3 for the directory it reads.
    test::write_manifest(plugins.path, "fds",
                         R"({"name": "fds", "executable": "/bin/ls", "args": ["/proc/self/fd"],
                             "restart": "never"})");
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return h.log().find("fds: pid ") != std::string::npos; }));
    const auto log = h.log();
    BOOST_TEST(log.find("[fds] 3") != std::string::npos); // it did list them
    for (int fd = 4; fd < 64; ++fd)
        BOOST_TEST_CONTEXT("fd " << fd)
        {
            BOOST_TEST(log.find("[fds] " + std::to_string(fd) + "\n") == std::string::npos);
        }
}

BOOST_AUTO_TEST_CASE(a_plugins_children_do_not_inherit_its_token)
{
    test::temp_dir plugins;
    test::write_manifest(
        plugins.path, "envtest",
        peer_manifest("envtest", R"(["child-env", "x"])", R"(, "restart": "never")"));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually(
        [&] { return h.log().find("[envtest] child-token=") != std::string::npos; }));
    BOOST_TEST(h.log().find("[envtest] plugin envtest") != std::string::npos, h.log());
    BOOST_TEST(h.log().find("[envtest] child-token=none") != std::string::npos, h.log());
}

// `slotbus plugins stop|start|restart NAME`: the operator's word holds over
// the restart policy and reloads; a failed plugin starts again without an
// edit of its manifest.
BOOST_AUTO_TEST_CASE(the_operator_stops_starts_and_restarts_a_plugin)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "worker",
                         peer_manifest("worker", R"(["create", "plugins/worker/inbox"])",
                                       R"(, "restart": "always", "max_restarts": 1,
                                          "backoff_ms": 50, "backoff_max_ms": 50)"));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "worker", "running"); }));
    const int first = pid_of(h, "worker");

    auto stopped = test::cli(h, {"plugins", "stop", "worker"});
    BOOST_TEST(stopped.code == 0, stopped.err);
    BOOST_TEST(stopped.out.find("stays stopped") != std::string::npos, stopped.out);
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "worker", "stopped"); }));
    BOOST_TEST(test::eventually([&] { return !test::alive(first); }));
    BOOST_TEST(plugin_entry(h, "worker").at("held").as_bool());
    ::kill(h.process().pid(), SIGHUP); // a reload does not start it again
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(state_is(h, "worker", "stopped"));
    BOOST_TEST(test::cli(h, {"plugins"}).out.find("stopped (by the operator)") !=
               std::string::npos);

    BOOST_TEST(test::cli(h, {"plugins", "start", "worker"}).code == 0);
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "worker", "running"); }));
    const int second = pid_of(h, "worker");
    BOOST_TEST(second != first);

    BOOST_TEST(test::cli(h, {"plugins", "restart", "worker"}).code == 0);
    BOOST_REQUIRE(test::eventually(
        [&] { return state_is(h, "worker", "running") && pid_of(h, "worker") != second; }));

    // Crashes until the supervisor gives up: failed. `start` brings it back.
    for (int i = 0; i < 3 && !state_is(h, "worker", "failed"); ++i) {
        BOOST_REQUIRE(test::eventually([&] { return state_is(h, "worker", "running"); }));
        ::kill(pid_of(h, "worker"), SIGKILL);
        std::this_thread::sleep_for(150ms);
    }
    BOOST_REQUIRE(test::eventually([&] { return state_is(h, "worker", "failed"); }));
    BOOST_TEST(test::cli(h, {"plugins", "start", "worker"}).code == 0);
    BOOST_TEST(test::eventually([&] { return state_is(h, "worker", "running"); }));

    // Its log, through the CLI: the host's lines about it are there.
    const auto logs = test::cli(h, {"logs", "worker", "--lines", "200"});
    BOOST_TEST(logs.code == 0, logs.err);
    BOOST_TEST(logs.out.find("slotbusd: stopped by the operator") != std::string::npos, logs.out);
    BOOST_TEST(logs.out.find("slotbusd: restart by the operator") != std::string::npos);

    const auto unknown = test::cli(h, {"plugins", "stop", "nobody"});
    BOOST_TEST(unknown.code == 1);
    BOOST_TEST(unknown.err.find("no plugin nobody") != std::string::npos, unknown.err);
    BOOST_TEST(test::cli(h, {"plugins", "pause", "worker"}).code == 2);
    BOOST_TEST(test::cli(h, {"logs", "nobody"}).code == 1);
}

// Two manifests with one name: the running plugin keeps it, the newcomer is
// refused and says so; plugin directories may be given more than once.
BOOST_AUTO_TEST_CASE(a_second_manifest_of_a_running_plugins_name_is_refused)
{
    test::temp_dir shipped, mine;
    test::write_manifest(mine.path, "b-alpha", peer_manifest("alpha", R"(["create", "a/one"])"));
    test::write_manifest(shipped.path, "beta", peer_manifest("beta", R"(["create", "b/one"])"));
    test::host h({"--plugins-dir", mine.path.string(), "--plugins-dir", shipped.path.string()});
    BOOST_REQUIRE(test::eventually(
        [&] { return state_is(h, "alpha", "running") && state_is(h, "beta", "running"); }));
    const int alpha = pid_of(h, "alpha");
    // An earlier file (by name) with the same plugin name comes in.
    test::write_manifest(mine.path, "a-alpha", peer_manifest("alpha", R"(["create", "a/two"])"));
    const auto reloaded = test::cli(h, {"reload"});
    BOOST_TEST(reloaded.code == 0, reloaded.err);
    BOOST_TEST(reloaded.out.find("a-alpha.json: field \"name\"") != std::string::npos,
               reloaded.out);
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(pid_of(h, "alpha") == alpha); // still the one that ran
    BOOST_TEST(state_is(h, "alpha", "running"));
    const auto listed = test::cli(h, {"plugins", "--json"}).json();
    const auto& errors = listed.at("manifest_errors").as_array();
    BOOST_REQUIRE_EQUAL(errors.size(), 1u);
    BOOST_TEST(errors[0].at("file").as_string().ends_with("a-alpha.json"));
    BOOST_TEST(errors[0].at("error").as_string().find("refused") != std::string::npos);
    BOOST_TEST(listed.at("plugins_dirs").as_array().size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_plugins_directory_that_does_not_exist_is_an_error_at_start)
{
    test::temp_dir d;
    const auto err = d.path / "err";
    const auto command = std::string(SLOTBUSD_PATH) + " --socket " + (d.path / "s").string() +
                         " --plugins-dir " + (d.path / "missing").string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    BOOST_TEST(WEXITSTATUS(status) == 2);
    std::ifstream in(err);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST(text.find("--plugins-dir") != std::string::npos, text);
    BOOST_TEST(text.find("no such directory") != std::string::npos, text);
    BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 1); // one line, not the help
}
