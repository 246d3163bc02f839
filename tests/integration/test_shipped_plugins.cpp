// The plugins shipped in plugins/, run by a real host from their manifests.
#define BOOST_TEST_MODULE shipped_plugins
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

using namespace slotbus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

/// Every line of the journal, oldest first: rotated files (highest number
/// first), then the current one. Fails the test on a line that is not JSON.
std::vector<json::value> journal_lines(const fs::path& dir)
{
    std::vector<fs::path> files;
    for (int n = 20; n >= 1; --n)
        if (fs::exists(dir / ("journal.jsonl." + std::to_string(n))))
            files.push_back(dir / ("journal.jsonl." + std::to_string(n)));
    files.push_back(dir / "journal.jsonl");
    std::vector<json::value> out;
    for (const auto& file : files) {
        std::ifstream in(file);
        for (std::string line; std::getline(in, line);) {
            boost::system::error_code ec;
            auto value = json::parse(line, ec);
            BOOST_CHECK_MESSAGE(!ec, file.string() << ": a line that is not JSON: " << line);
            out.push_back(std::move(value));
        }
    }
    return out;
}

/// A journal plugin of the host, writing events/** to `dir`; `more` goes into the manifest.
std::string journal_manifest(const fs::path& dir, const std::string& args = "",
                             const std::string& more = "")
{
    return std::string(R"({"name": "journal", "executable": ")") + SLOTBUS_JOURNAL_PATH +
           R"(", "args": ["--pattern", "events/**", "--dir", ")" + dir.string() + "\"" + args +
           "]" + R"(, "permissions": [{"allow": ["create"], "names": ["slotbus/journal/**"]},
                                     {"allow": ["read"], "names": ["events/**"]}])" +
           more + "}";
}

/// The journal's slot exists: it is subscribed and ready.
bool journal_is_up(const test::host& h)
{
    const auto answer = test::cli(h, {"ls", "slotbus/journal", "--json"}).json();
    return answer.at("slots").as_array().size() == 1;
}

struct order_created {
    static constexpr std::string_view event_type = "orders.created";
    int n = 0;
};
BOOST_DESCRIBE_STRUCT(order_created, (), (n))

} // namespace

BOOST_AUTO_TEST_CASE(journal_keeps_every_envelope_rotates_and_survives_a_crash)
{
    test::temp_dir plugins, state;
    const auto dir = state.path / "journal";
    test::write_manifest(plugins.path, "journal",
                         journal_manifest(dir, R"(, "--max-bytes", "4000", "--max-files", "10")",
                                          R"(, "backoff_ms": 1000)"));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return journal_is_up(h); }));
    connection bus;
    bus.connect(h.socket());
    publisher out(bus, "shop");
    for (int i = 0; i < 50; ++i)
        BOOST_REQUIRE(out.publish("events/orders", order_created{i}) == 1u);
    BOOST_REQUIRE(test::eventually([&] { return journal_lines(dir).size() == 50; }));
    BOOST_TEST(fs::exists(dir / "journal.jsonl.1")); // rotated by size
    for (const auto& entry : fs::directory_iterator(dir))
        BOOST_TEST(fs::file_size(entry.path()) <= 4000u);

    // Killed; while it waits to restart, its last line is cut short (as a
    // crash mid-write would leave it).
    const int pid = test::plugin_entry(h, "journal").at("pid").to_number<int>();
    ::kill(pid, SIGKILL);
    BOOST_REQUIRE(test::eventually([&] {
        const auto journal = test::plugin_entry(h, "journal");
        return !journal.is_null() && journal.at("state").as_string() == "backoff";
    }));
    std::ofstream(dir / "journal.jsonl", std::ios::app) << R"({"specversion":"1.0","id":"cut)";
    BOOST_REQUIRE(test::eventually([&] {
        return h.log().find("journal: dropped 30 bytes of a line cut short by a crash") !=
               std::string::npos;
    }));
    BOOST_REQUIRE(test::eventually([&] { return journal_is_up(h); }));
    for (int i = 50; i < 60; ++i)
        BOOST_REQUIRE(out.publish("events/orders", order_created{i}) == 1u);
    BOOST_REQUIRE(test::eventually([&] { return journal_lines(dir).size() == 60; }));
    const auto lines = journal_lines(dir);
    for (int i = 0; i < 60; ++i) {
        BOOST_TEST_CONTEXT("line " << i)
        {
            BOOST_TEST(lines[static_cast<std::size_t>(i)].at("data").at("n").to_number<int>() == i);
            BOOST_TEST(lines[static_cast<std::size_t>(i)].at("source").as_string() ==
                       "/clients/shop");
        }
    }

    // Numbers as the event had them (9.5, not Boost.JSON's 9.5E0).
    auto raw = client_slot::open(bus, "events/price");
    BOOST_TEST(raw.write(R"({"specversion":"1.0","id":"p","source":"/s","type":"t",)"
                         R"("data":{"price":9.5,"whole":2.0}})") == 1u);
    // A record over several lines becomes one, numbers still as numbers.
    BOOST_TEST(raw.write("{\"specversion\": \"1.0\", \"id\": \"q\", \"source\": \"/s\",\n"
                         " \"type\": \"t\", \"data\": {\"price\": 1.5}}\n") == 1u);
    BOOST_REQUIRE(test::eventually([&] { return journal_lines(dir).size() == 62; }));
    std::stringstream text;
    text << std::ifstream(dir / "journal.jsonl").rdbuf();
    BOOST_TEST(text.str().find(R"("data":{"price":9.5,"whole":2.0}})"
                               "\n") != std::string::npos,
               text.str());
    BOOST_TEST(text.str().find(R"(,"data":{"price":1.5}})"
                               "\n") != std::string::npos,
               text.str());
}

BOOST_AUTO_TEST_CASE(journal_writes_what_it_holds_before_it_stops)
{
    test::temp_dir plugins, state;
    const auto dir = state.path / "journal";
    test::write_manifest(plugins.path, "journal", journal_manifest(dir));
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] { return journal_is_up(h); }));
    {
        connection bus;
        bus.connect(h.socket());
        auto slot = client_slot::open(bus, "events/burst");
        for (int i = 0; i < 2000; ++i) // every one acknowledged as delivered to the journal
            BOOST_REQUIRE(slot.write(boost::asio::buffer(R"({"i":)" + std::to_string(i) + "}")) ==
                          1u);
    }
    BOOST_REQUIRE(test::cli(h, {"stop"}).code == 0); // at once: SIGTERM to the journal
    BOOST_REQUIRE(h.process().wait_exit(10s).has_value());
    const auto lines = journal_lines(dir);
    BOOST_REQUIRE_EQUAL(lines.size(), 2000u);
    BOOST_TEST(lines.back().at("i").to_number<int>() == 1999);
}

BOOST_AUTO_TEST_CASE(metrics_publishes_host_statistics_as_envelopes)
{
    test::temp_dir plugins;
    // The shipped manifest, as it is, beside the built executable.
    fs::copy_file(fs::path(SLOTBUS_METRICS_PATH).parent_path() / "metrics.json",
                  plugins.path / "metrics.json");
    fs::copy_file(SLOTBUS_METRICS_PATH, plugins.path / "slotbus-metrics");
    test::host h({"--plugins-dir", plugins.path.string()});
    connection bus;
    bus.connect(h.socket());
    auto inbox = server_slot::create(bus, "tests/metrics", 0, 10000);
    auto sub = inbox.subscribe("slotbus/metrics/**");
    // The figures of the first envelope may predate this slot (taken just
    // before it was created, published just after): the next one lists it.
    auto lists_inbox = [](const envelope& e) {
        for (const auto& s : e.data.at("slots").as_array())
            if (s.at("name").as_string() == "\\\\.\\mailslot\\tests\\metrics")
                return true;
        return false;
    };
    std::error_code ec;
    envelope e;
    bool listed = false;
    for (int i = 0; i < 3 && !listed; ++i) {
        e = parse_envelope(inbox.read(), ec);
        BOOST_REQUIRE(!ec);
        BOOST_TEST(e.type == "slotbus.host.stats");
        BOOST_TEST(e.source == "/plugins/metrics");
        BOOST_TEST(e.subject == "slotbus\\metrics\\host");
        BOOST_TEST(e.data.at("plugins_running").to_number<int>() == 1);
        listed = lists_inbox(e);
    }
    BOOST_TEST(e.data.at("slot_count").to_number<int>() >= 1);
    BOOST_TEST(listed);
}

BOOST_AUTO_TEST_CASE(a_tree_of_twenty_thousand_slots_is_listed_and_metered)
{
    // More slots than one frame of listing holds, names in several scripts:
    // the CLI lists them all (in pages), metrics goes on publishing.
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "metrics",
                         std::string(R"({"name": "metrics", "executable": ")") +
                             SLOTBUS_METRICS_PATH +
                             R"(", "args": ["--topic", "watch/stats", "--interval", "100"],
                                   "permissions": [{"allow": ["write"], "names": ["watch/**"]},
                                                   {"allow": ["list"]}]})");
    // Budgets are bounds, not memory taken: let 20 000 slots of the least one be.
    test::host h({"--plugins-dir", plugins.path.string(), "--max-connection-budget", "68719476736",
                  "--max-total-budget", "68719476736"});
    constexpr int per_connection = 4000, connections = 5;
    std::vector<connection> buses(connections);
    std::vector<server_slot> slots;
    for (int c = 0; c < connections; ++c) {
        buses[c].connect(h.socket());
        for (int i = 0; i < per_connection; ++i)
            slots.push_back(server_slot::create(buses[c],
                                                "tree/caf\xc3\xa9-" + std::to_string(c) +
                                                    "/\xe2\x82\xac" + std::to_string(i),
                                                slot_options{0, 0, 1}));
    }
    connection bus;
    bus.connect(h.socket());
    auto inbox = server_slot::create(bus, "tests/watch", 0, 10000);
    auto sub = inbox.subscribe("watch/**");
    for (int i = 0; i < 3; ++i) { // three envelopes, over the whole tree
        std::error_code ec;
        const auto e = parse_envelope(inbox.read(), ec);
        BOOST_REQUIRE(!ec);
        BOOST_TEST(e.data.at("slot_count").to_number<int>() >= connections * per_connection);
    }
    const auto listed = test::cli(h, {"ls", "tree", "--json"}, 60s).json();
    BOOST_TEST(listed.at("slots").as_array().size() ==
               static_cast<std::size_t>(connections * per_connection));
    BOOST_TEST(plugin_entry(h, "metrics").at("restarts").to_number<int>() == 0);
}
