#define BOOST_TEST_MODULE security
// Who may do what, seen from outside: a real host, a second real Unix user
// (made here, removed after), plugins launched from manifests, the CLI.
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/describe/class.hpp>
#include <boost/json/serialize.hpp>

#include <csignal>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace slotbus;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

/// A second Unix user, in a group of its own for sharing the bus with, made
/// with useradd and removed again. Needs root: `skip` says why when it cannot be.
struct second_user {
    std::string name, group;
    test::run_as as;
    unsigned shared_gid = 0;
    std::string skip;

    second_user()
    {
        if (::geteuid() != 0) {
            skip = "skipped: creating a second Unix user needs root (CI runs as root)";
            return;
        }
        name = "sbt" + std::to_string(::getpid());
        group = name + "-bus";
        remove();
        if (std::system(("groupadd " + group).c_str()) != 0 ||
            std::system(("useradd --system --no-create-home --shell /usr/sbin/nologin -G " + group +
                         " " + name)
                            .c_str()) != 0) {
            skip = "skipped: useradd/groupadd failed";
            return;
        }
        const passwd* p = ::getpwnam(name.c_str());
        const struct group* g = ::getgrnam(group.c_str());
        if (!p || !g) {
            skip = "skipped: the new user is not visible";
            return;
        }
        shared_gid = g->gr_gid;
        as = {p->pw_uid, p->pw_gid, {p->pw_gid, shared_gid}};
    }
    ~second_user()
    {
        if (!name.empty())
            remove();
    }
    void remove() const
    {
        (void)std::system(("userdel " + name + " 2>/dev/null").c_str());
        (void)std::system(("groupdel " + group + " 2>/dev/null").c_str());
    }
    [[nodiscard]] bool missing() const
    {
        if (!skip.empty())
            BOOST_TEST_MESSAGE(skip);
        return !skip.empty();
    }
    [[nodiscard]] std::string uid() const { return std::to_string(as.uid); }
    /// The same user without the shared group.
    [[nodiscard]] test::run_as outside() const { return {as.uid, as.gid, {as.gid}}; }
};

/// Runs `peer try OPS...` as `who`: its "OP ARG ERROR" lines.
std::vector<std::string> try_as(const test::host& h, const test::run_as& who,
                                const std::vector<std::string>& ops)
{
    std::vector<std::string> args{"try"};
    args.insert(args.end(), ops.begin(), ops.end());
    test::child peer(SLOTBUS_PEER_PATH, args, {h.env()}, who);
    BOOST_TEST(peer.wait_exit(10s).has_value());
    return peer.lines();
}

/// Runs the CLI as `who`.
test::cli_result cli_as(const test::host& h, const test::run_as& who,
                        const std::vector<std::string>& args)
{
    test::child run(SLOTBUS_CLI_PATH, args, {h.env()}, who);
    test::cli_result r;
    r.code = run.wait_exit(20s).value_or(-1);
    r.out = run.stdout_text();
    r.err = run.stderr_text();
    return r;
}

void write_file(const fs::path& path, const std::string& text)
{
    std::ofstream(path) << text;
}

} // namespace

BOOST_AUTO_TEST_CASE(another_user_may_do_nothing_by_default_and_the_host_goes_on)
{
    second_user user;
    if (user.missing())
        return;
    test::host h({"--socket-mode", "0666"});
    connection bus;
    bus.connect(h.socket());
    auto orders = server_slot::create(bus, "events/orders");

    const auto lines =
        try_as(h, user.as,
               {"create:mine", "write:events/orders", "subscribe:**", "admin:slots", "admin:stop"});
    const std::vector<std::string> expected{"create mine 5",  "write events/orders 5",
                                            "subscribe ** 6", // no slot to subscribe
                                            "admin slots 5",  "admin stop 5",          "done"};
    BOOST_TEST(lines == expected, boost::test_tools::per_element());
    const auto ls = cli_as(h, user.as, {"ls"});
    BOOST_TEST(ls.code == 1);
    BOOST_TEST(ls.err.find("(error 5)") != std::string::npos, ls.err);

    // Nothing it tried cost anyone else anything; its refusals are counted.
    BOOST_TEST(orders.info().message_count == 0u);
    const auto stats = admin(bus, "stats").as_object();
    const auto& denied = stats.at("denied").at("uid " + user.uid()).as_object();
    BOOST_TEST(denied.at("create").to_number<int>() == 1);
    BOOST_TEST(denied.at("write").to_number<int>() == 1);
    BOOST_TEST(denied.at("list").to_number<int>() == 2);
    BOOST_TEST(denied.at("admin").to_number<int>() == 1);
    const auto table = test::cli(h, {"stats"});
    BOOST_TEST(table.out.find("uid " + user.uid()) != std::string::npos, table.out);
}

BOOST_AUTO_TEST_CASE(a_bus_shared_with_a_group_gives_its_members_what_the_policy_says)
{
    second_user user;
    if (user.missing())
        return;
    test::temp_dir dir;
    const auto policy = dir.path / "policy.json";
    write_file(policy, R"({"rules": [
        {"group": ")" + user.group +
                           R"(", "allow": ["create", "read"], "names": ["inbox/**"]},
        {"group": ")" + user.group +
                           R"(", "allow": ["write", "read"], "names": ["events/**"]}
    ]})");
    test::host h(
        {"--socket-mode", "0660", "--socket-group", user.group, "--policy", policy.string()});
    struct stat st {};
    BOOST_REQUIRE(::stat(h.socket().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0660u);
    BOOST_TEST(st.st_gid == user.shared_gid);

    connection bus;
    bus.connect(h.socket());
    auto orders = server_slot::create(bus, "events/orders");
    auto secret = server_slot::create(bus, "private/x");
    const auto lines = try_as(h, user.as,
                              {"create:inbox/u", "subscribe:events/**", "write:events/orders",
                               "create:plugins/journal/x", "create:slotbus/x", "create:elsewhere",
                               "write:private/x", "subscribe:**", "subscribe:private/*"});
    const std::vector<std::string> expected{"create inbox/u 0",      "subscribe events/** 0",
                                            "write events/orders 0", "create plugins/journal/x 5",
                                            "create slotbus/x 5",    "create elsewhere 5",
                                            "write private/x 5",     "subscribe ** 5",
                                            "subscribe private/* 5", "done"};
    BOOST_TEST(lines == expected, boost::test_tools::per_element());
    BOOST_TEST(orders.read() == "probe");
    BOOST_TEST(secret.info().message_count == 0u);

    // Outside the group, the socket itself is closed to the same uid.
    const auto outside = try_as(h, user.outside(), {"create:inbox/v"});
    BOOST_REQUIRE(!outside.empty());
    BOOST_TEST(outside.front() == "connect 13");
}

BOOST_AUTO_TEST_CASE(a_monitoring_user_reads_and_lists_and_may_not_stop_or_write)
{
    second_user user;
    if (user.missing())
        return;
    test::temp_dir dir;
    const auto policy = dir.path / "policy.json";
    write_file(policy, R"({"rules": [
        {"user": ")" + user.name +
                           R"(", "allow": ["read", "list"]},
        {"user": ")" + user.name +
                           R"(", "allow": ["create"], "names": ["monitor/**"]}
    ]})");
    test::host h({"--socket-mode", "0666", "--policy", policy.string()});
    connection bus;
    bus.connect(h.socket());
    auto orders = server_slot::create(bus, "events/orders");

    test::child tail(SLOTBUS_CLI_PATH,
                     {"tail", "events/**", "--inbox", "monitor/tail", "--count", "1", "--json"},
                     {h.env()}, user.as);
    BOOST_REQUIRE(test::eventually([&] {
        return test::cli(h, {"ls", "monitor", "--json"}).json().at("slots").as_array().size() == 1;
    }));
    connection other;
    other.connect(h.socket());
    auto writer = client_slot::open(other, "events/orders");
    BOOST_TEST(writer.write("watched") == 2u); // the slot and the monitor's tail
    BOOST_TEST(tail.wait_exit(10s).value_or(-1) == 0, tail.stderr_text());
    BOOST_TEST(tail.stdout_text().find("watched") != std::string::npos, tail.stdout_text());

    BOOST_TEST(cli_as(h, user.as, {"stats", "--json"}).code == 0);
    const auto stop = cli_as(h, user.as, {"stop", "--wait", "500"});
    BOOST_TEST(stop.code == 1);
    const auto send = cli_as(h, user.as, {"send", "events/orders", "forged"});
    BOOST_TEST(send.code == 1);
    BOOST_TEST(send.err.find("(error 5)") != std::string::npos, send.err);
    BOOST_TEST(orders.read() == "watched");
    BOOST_TEST(orders.info().message_count == 0u); // nothing from the monitor

    // The operator asks which rule decides.
    const auto no = test::cli(h, {"policy", "explain", "--uid", user.uid(), "events/x", "write"});
    BOOST_TEST(no.code == 1);
    BOOST_TEST(no.out.find("may not write") != std::string::npos, no.out);
    const auto yes = test::cli(h, {"policy", "explain", "--uid", user.uid(), "events/**", "read"});
    BOOST_TEST(yes.code == 0);
    BOOST_TEST(yes.out.find("rule 1 (user " + user.name + ")") != std::string::npos, yes.out);
    const auto admin_right = test::cli(h, {"policy", "explain", "--uid", user.uid(), "admin"});
    BOOST_TEST(admin_right.out.find("built-in default") != std::string::npos, admin_right.out);
}

BOOST_AUTO_TEST_CASE(a_policy_reload_closes_what_it_no_longer_allows_and_a_bad_file_changes_nothing)
{
    second_user user;
    if (user.missing())
        return;
    test::temp_dir dir;
    const auto policy = dir.path / "policy.json";
    const auto rules = [&](const std::string& body) {
        write_file(policy, R"({"rules": [)" + body + "]}");
    };
    const auto who = R"({"user": ")" + user.name + R"(", )";
    rules(who + R"("allow": ["create"], "names": ["inbox/**"]},)" + who +
          R"("allow": ["read", "write"], "names": ["events/**"]})");
    test::host h({"--socket-mode", "0666", "--policy", policy.string()});
    const auto reload = [&](const std::string& logged) {
        const auto before = h.log().size();
        h.process().signal(SIGHUP);
        return test::eventually([&] { return h.log().find(logged, before) != std::string::npos; });
    };

    test::child reader(SLOTBUS_PEER_PATH, {"create", "inbox/r", "--subscribe", "events/**"},
                       {h.env()}, user.as);
    BOOST_REQUIRE(reader.wait_for_line("created"));
    connection bus;
    bus.connect(h.socket());
    auto writer = client_slot::open(bus, "events/x");
    BOOST_TEST(writer.write("one") == 1u);
    BOOST_REQUIRE(reader.wait_for_line("record 3 one"));

    // Reading goes: the subscription is removed, the reader's slot stays.
    rules(who + R"("allow": ["create"], "names": ["inbox/**"]},)" + who +
          R"("allow": ["write"], "names": ["events/**"]})");
    BOOST_REQUIRE(reload("1 handles or subscriptions it no longer allows were closed"));
    std::error_code ec;
    BOOST_TEST(writer.write("two", ec) == 0u); // nobody receives events/x now
    BOOST_TEST((ec == error::file_not_found));
    BOOST_TEST(!reader.exited());

    // Creating goes: the slot is closed and its reader told.
    rules(who + R"("allow": ["write"], "names": ["events/**"]})");
    BOOST_REQUIRE(reload("reloaded: 1 rules; 1 handles"));
    BOOST_TEST(reader.wait_exit(10s).value_or(-1) == 1);
    BOOST_TEST(reader.stdout_text().find("error 5") != std::string::npos, reader.stdout_text());

    // A bad file keeps the policy in force: writing is still allowed.
    write_file(policy, "{ not json");
    BOOST_REQUIRE(reload("the policy in force stays"));
    auto target = server_slot::create(bus, "events/y");
    const auto lines = try_as(h, user.as, {"write:events/y", "create:inbox/again"});
    BOOST_REQUIRE(lines.size() == 3u);
    BOOST_TEST(lines[0] == "write events/y 0");
    BOOST_TEST(lines[1] == "create inbox/again 5");
    BOOST_TEST(target.read() == "probe");
}

BOOST_AUTO_TEST_CASE(a_stolen_plugin_token_is_refused_and_the_plugin_keeps_its_own)
{
    test::temp_dir plugins, loot;
    const auto token_file = loot.path / "token";
    // The plugin leaks its token (as a bug or an exploit would), then runs.
    const auto script = plugins.path / "leaky.sh";
    write_file(script, "#!/bin/sh\necho \"$SLOTBUS_TOKEN\" > " + token_file.string() + "\nexec " +
                           SLOTBUS_PEER_PATH + " create plugins/leaky/inbox\n");
    fs::permissions(script, fs::perms::owner_all);
    test::write_manifest(plugins.path, "leaky",
                         R"({"name": "leaky", "executable": "leaky.sh", "restart": "never"})");
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(
        test::eventually([&] { return h.log().find("[leaky] created") != std::string::npos; }));
    std::string token;
    std::ifstream(token_file) >> token;
    BOOST_REQUIRE(token.size() >= 32u);

    // Another process with the token, same uid: refused as the plugin.
    test::child thief(SLOTBUS_PEER_PATH, {"try", "create:plugins/leaky/mine"},
                      {h.env(), "SLOTBUS_TOKEN=" + token});
    BOOST_TEST(thief.wait_exit(10s).value_or(-1) == 1);
    BOOST_TEST(thief.stdout_text() == "connect 5\n");
    BOOST_TEST(h.log().find("a copied token is refused") == std::string::npos); // told the thief

    // The plugin's own slot is its, and no one else can take the name.
    const auto slots = test::cli(h, {"ls", "plugins", "--json"}).json().at("slots").as_array();
    BOOST_REQUIRE(slots.size() == 1u);
    BOOST_TEST(slots[0].at("owner").at("plugin").as_string() == "leaky");
    connection bus;
    bus.connect(h.socket());
    std::error_code ec;
    (void)server_slot::create(bus, "plugins/leaky/decoy", {}, ec);
    BOOST_TEST((ec == error::access_denied));
}

BOOST_AUTO_TEST_CASE(a_plugin_beyond_its_manifest_is_refused_that_operation_only)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "limited",
                         std::string(R"({"name": "limited", "executable": ")") + SLOTBUS_PEER_PATH +
                             R"(", "restart": "never",
            "args": ["try", "write:events/x", "write:other/x", "create:plugins/limited/in",
                     "subscribe:plugins/limited/**", "subscribe:events/**", "create:other/in",
                     "admin:stats"],
            "permissions": [{"allow": ["write"], "names": ["events/**"]}]})");
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(
        test::eventually([&] { return h.log().find("[limited] done") != std::string::npos; }));
    // Allowed but absent (2) is not refused (5): the right is decided first.
    for (const auto* line :
         {"[limited] write events/x 2", "[limited] write other/x 5",
          "[limited] create plugins/limited/in 0", "[limited] subscribe plugins/limited/** 0",
          "[limited] subscribe events/** 5", "[limited] create other/in 5",
          "[limited] admin stats 5"})
        BOOST_TEST(h.log().find(line) != std::string::npos, line);
    const auto stats = test::cli(h, {"stats", "--json"}).json();
    const auto& denied = stats.at("denied").at("plugin limited").as_object();
    BOOST_TEST(denied.at("write").to_number<int>() == 1);
    BOOST_TEST(denied.at("read").to_number<int>() == 1);
    BOOST_TEST(denied.at("create").to_number<int>() == 1);
    BOOST_TEST(denied.at("list").to_number<int>() == 1);
    const auto why = test::cli(h, {"policy", "explain", "--plugin", "limited", "other/x", "write"});
    BOOST_TEST(why.out.find("beyond its manifest") != std::string::npos, why.out);
}

namespace {
struct ping_event {
    static constexpr std::string_view event_type = "test.ping";
    int n = 0;
};
BOOST_DESCRIBE_STRUCT(ping_event, (), (n))
} // namespace

BOOST_AUTO_TEST_CASE(a_plugin_publishing_as_another_plugin_is_dropped_as_forged)
{
    test::temp_dir plugins, gate;
    const auto envelope = [](const std::string& source, int n) {
        return R"({"specversion":"1.0","id":"same-id","source":")" + source +
               R"(","type":"test.ping","data":{"n":)" + std::to_string(n) + "}}";
    };
    // It waits for the subscriber, then sends as metrics, then as itself.
    const auto script = plugins.path / "liar.sh";
    write_file(script, "#!/bin/sh\nwhile [ ! -e " + (gate.path / "go").string() +
                           " ]; do sleep 0.05; done\nexec " + SLOTBUS_PEER_PATH +
                           " try 'send:events/x=" + envelope("/plugins/metrics", 1) +
                           "' 'send:events/x=" + envelope("/plugins/liar", 2) + "'\n");
    fs::permissions(script, fs::perms::owner_all);
    test::write_manifest(plugins.path, "liar", R"({"name": "liar", "executable": "liar.sh",
        "restart": "never", "permissions": [{"allow": ["write"], "names": ["events/**"]}]})");
    test::host h({"--plugins-dir", plugins.path.string()});
    connection bus;
    bus.connect(h.socket());
    subscriber watcher(bus, "watcher");
    std::vector<int> got;
    std::vector<std::string> errors;
    watcher.on_error([&](std::error_code, const std::string& why) { errors.push_back(why); });
    auto s = watcher.on<ping_event>("events/**", [&](const ping_event& e) { got.push_back(e.n); });
    write_file(gate.path / "go", "");
    BOOST_REQUIRE(test::eventually([&] {
        watcher.process_for(50ms);
        return watcher.stats().received == 2u;
    }));
    BOOST_TEST(got == std::vector<int>{2}); // its own, not taken for a duplicate of the forgery
    BOOST_TEST(watcher.stats().forged == 1u);
    BOOST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0].find("forged source /plugins/metrics: the host says plugin liar") == 0u,
               errors[0]);
}

BOOST_AUTO_TEST_CASE(a_client_trusts_a_shared_host_of_another_uid_only_where_no_one_else_writes)
{
    second_user user;
    if (user.missing())
        return;
    // A system-bus-style host: its own user, its own directory, shared with
    // everyone. Where it is decides whether a client may believe it.
    const auto run_as_host = [&](const fs::path& top) {
        const auto dir = top / "run";
        fs::create_directories(dir);
        BOOST_REQUIRE(::chown(dir.c_str(), user.as.uid, user.as.gid) == 0);
        fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        const auto socket = (dir / "bus.sock").string();
        auto host = std::make_unique<test::child>(
            SLOTBUSD_PATH, std::vector<std::string>{"--socket", socket, "--socket-mode", "0666"},
            std::vector<std::string>{}, user.as);
        BOOST_REQUIRE_MESSAGE(host->wait_for_line("ready on"), host->stderr_text());
        return std::pair(std::move(host), socket);
    };
    {
        // Under /run (root's, 0755): only that uid or root could listen there.
        const fs::path top = "/run/slotbus-test-" + std::to_string(::getpid());
        fs::create_directories(top);
        fs::permissions(top, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        auto [host, socket] = run_as_host(top);
        connection bus; // root, not the host's uid
        std::error_code ec;
        bus.connect(socket, ec);
        BOOST_TEST(!ec, ec.message() << ": " << bus.last_failure());
        auto inbox = server_slot::create(bus, "root/inbox", {}, ec); // root may, by default
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(host->stop() == 0);
        fs::remove_all(top);
    }
    {
        // Under /tmp, anyone could have made that directory first: refused.
        test::temp_dir top;
        fs::permissions(top.path, fs::perms::all);
        auto [host, socket] = run_as_host(top.path);
        connection bus;
        std::error_code ec;
        bus.connect(socket, ec);
        BOOST_TEST((ec == error::access_denied), ec.message());
        BOOST_TEST(bus.last_failure().find("not trusted") != std::string::npos, bus.last_failure());
        BOOST_TEST(host->stop() == 0);
    }
}
