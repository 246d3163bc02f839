// Every `slotbus` command against a live host: the tables people read, the
// JSON scripts parse, and exit codes that mean something.
#define BOOST_TEST_MODULE cli
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

/// A host with one slot, `events\orders`, read by this test and subscribed
/// to `events\**`, and a second slot `events\audit`.
struct fixture {
    test::host h;
    connection bus;
    server_slot orders;
    server_slot audit;
    subscription all;

    fixture()
    {
        bus.connect(h.socket());
        orders = server_slot::create(bus, "events/orders", 0, 2000);
        audit = server_slot::create(bus, "Events/Audit", 424, 0);
        all = orders.subscribe("events/**");
    }
};

const json::object* slot_named(const json::value& answer, std::string_view path)
{
    for (const auto& s : answer.at("slots").as_array())
        if (fold_case(s.at("path").as_string()) == fold_case(path))
            return &s.as_object();
    return nullptr;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(ls_shows_the_tree_owners_queues_and_subscriptions, fixture)
{
    test::cli(h, {"send", "events/audit", "one"});
    const auto table = test::cli(h, {"ls"});
    BOOST_TEST(table.code == 0);
    // The directory, then its slots below it, spelled as created.
    BOOST_TEST(table.out.find("\nEvents\\\n  Audit ") != std::string::npos, table.out);
    BOOST_TEST(table.out.find("1 (3 B)") != std::string::npos);
    BOOST_TEST(table.out.find("events\\**") != std::string::npos);

    const auto answer = test::cli(h, {"ls", "--json"}).json();
    const auto* audit_entry = slot_named(answer, "events\\audit");
    BOOST_REQUIRE(audit_entry);
    BOOST_TEST(audit_entry->at("path").as_string() == "Events\\Audit"); // spelled as created
    BOOST_TEST(audit_entry->at("depth").to_number<int>() == 1);
    BOOST_TEST(audit_entry->at("owner").at("pid").to_number<int>() == ::getpid());
    const auto* orders_entry = slot_named(answer, "events\\orders");
    BOOST_REQUIRE(orders_entry);
    BOOST_TEST(orders_entry->at("subscriptions").as_array().at(0).as_string() == "events\\**");

    // A path narrows the listing; the short and the full form are the same.
    const auto narrow = test::cli(h, {"ls", "events/audit", "--json"}).json();
    BOOST_TEST(narrow.at("slots").as_array().size() == 1u);
    const auto full = test::cli(h, {"ls", R"(\\.\mailslot\EVENTS)", "--json"}).json();
    BOOST_TEST(full.at("slots").as_array().size() == 2u);
    BOOST_TEST(test::cli(h, {"ls", "nothing/here"}).out == "no slots at or below nothing/here\n");
}

BOOST_FIXTURE_TEST_CASE(info_describes_one_slot_and_fails_for_a_missing_one, fixture)
{
    const auto table = test::cli(h, {"info", "events/audit"});
    BOOST_TEST(table.code == 0);
    BOOST_TEST(table.out.find("max record:      424 B") != std::string::npos, table.out);
    BOOST_TEST(table.out.find("read timeout:    0 ms") != std::string::npos);

    const auto answer = test::cli(h, {"info", R"(\\.\mailslot\events\orders)", "--json"}).json();
    BOOST_TEST(answer.at("read_timeout").to_number<int>() == 2000);
    BOOST_TEST(answer.at("overflow").as_string() == "block");

    const auto missing = test::cli(h, {"info", "events/nope"});
    BOOST_TEST(missing.code == 1);
    BOOST_TEST(missing.err.find("no slot \\\\.\\mailslot\\events\\nope") != std::string::npos);
    BOOST_TEST(test::cli(h, {"info", "bad*name"}).code == 2);
}

BOOST_FIXTURE_TEST_CASE(send_writes_one_record_or_one_per_stdin_line, fixture)
{
    // One record, to a name two slots receive (the slot and the subscription).
    const auto one = test::cli(h, {"send", "events/audit", "hello", "--json"});
    BOOST_TEST(one.code == 0);
    BOOST_TEST(one.json().at("delivered").to_number<int>() == 2);
    BOOST_TEST(audit.read() == "hello");
    BOOST_TEST(orders.read() == "hello");

    // One record per stdin line, through a shell pipe.
    test::child piped("/bin/sh",
                      {"-c", std::string("printf 'a\\nb\\nc\\n' | ") + SLOTBUS_CLI_PATH +
                                 " send events/orders/eu"},
                      {h.env()});
    BOOST_REQUIRE(piped.wait_exit().value_or(-1) == 0);
    BOOST_TEST(piped.stdout_text() == "sent 3 records to \\\\.\\mailslot\\events\\orders\\eu: 3 "
                                      "deliveries\n");
    BOOST_TEST(orders.read() == "a");
    BOOST_TEST(orders.read() == "b");
    BOOST_TEST(orders.read() == "c");

    // --type wraps the data in an envelope.
    BOOST_TEST(
        test::cli(h, {"send", "events/orders", R"({"id": 7})", "--type", "orders.created"}).code ==
        0);
    std::error_code ec;
    const auto e = parse_envelope(orders.read(), ec);
    BOOST_REQUIRE(!ec);
    BOOST_TEST(e.type == "orders.created");
    BOOST_TEST(e.data.at("id").to_number<int>() == 7);

    // Errors: nobody receives; too long for the slot.
    const auto nobody = test::cli(h, {"send", "nowhere", "x"});
    BOOST_TEST(nobody.code == 1);
    BOOST_TEST(nobody.err.find("error 2") != std::string::npos);
    const auto too_long = test::cli(h, {"send", "events/audit", std::string(500, 'x'), "--json"});
    BOOST_TEST(too_long.code == 1);
    BOOST_TEST(too_long.json().at("error").to_number<int>() == 4336);
}

BOOST_FIXTURE_TEST_CASE(tail_prints_envelopes_as_they_arrive, fixture)
{
    test::child tail(SLOTBUS_CLI_PATH, {"tail", "events/orders/*", "--count", "2", "--json"},
                     {h.env()});
    // Subscribed once the CLI's temporary slot shows its pattern.
    BOOST_REQUIRE(test::eventually([&] {
        const auto answer = test::cli(h, {"ls", "slotbus/cli", "--json"}).json();
        return !answer.at("slots").as_array().empty();
    }));
    connection writer;
    writer.connect(h.socket());
    publisher out(writer, "cli-test");
    std::error_code ec;
    out.publish("events/orders/eu",
                make_envelope(out.source(), "orders.created", "events\\orders\\eu", {{"n", 1}}),
                ec);
    BOOST_REQUIRE(!ec);
    auto raw = client_slot::open(writer, "events/orders/us");
    raw.write(boost::asio::buffer(std::string("not an envelope")));
    BOOST_REQUIRE(tail.wait_exit(10s).value_or(-1) == 0);
    BOOST_REQUIRE_EQUAL(tail.lines().size(), 2u);
    const auto first = json::parse(tail.lines()[0]);
    BOOST_TEST(first.at("type").as_string() == "orders.created");
    BOOST_TEST(first.at("source").as_string() == "/clients/cli-test");
    BOOST_TEST(json::parse(tail.lines()[1]).at("raw").as_string() == "not an envelope");

    // Pretty, and a deadline that runs out.
    const auto quiet = test::cli(h, {"tail", "quiet/**", "--count", "1", "--for", "300"});
    BOOST_TEST(quiet.code == 3);
    BOOST_TEST(test::cli(h, {"tail", "bad/**/x"}).code == 2);
}

BOOST_FIXTURE_TEST_CASE(stats_counts_every_slots_traffic, fixture)
{
    for (int i = 0; i < 3; ++i)
        test::cli(h, {"send", "events/audit", "abcd"});
    (void)audit.read();
    (void)audit.info(); // the reader's next frame carries the report of its read
    const auto answer = test::cli(h, {"stats", "--json"}).json();
    BOOST_TEST(answer.at("slot_count").to_number<int>() == 2);
    BOOST_TEST(answer.at("pid").to_number<int>() == h.process().pid());
    BOOST_TEST(answer.at("rss_bytes").to_number<std::int64_t>() > 0);
    BOOST_TEST(answer.at("peak_rss_bytes").to_number<std::int64_t>() >=
               answer.at("rss_bytes").to_number<std::int64_t>());
    const json::object* found = nullptr;
    for (const auto& s : answer.at("slots").as_array())
        if (fold_case(s.at("name").as_string()) == "\\\\.\\mailslot\\events\\audit")
            found = &s.as_object();
    BOOST_REQUIRE(found);
    BOOST_TEST(found->at("records_in").to_number<int>() == 3);
    BOOST_TEST(found->at("records_out").to_number<int>() == 1);
    BOOST_TEST(found->at("bytes_in").to_number<int>() == 12);
    BOOST_TEST(found->at("depth").to_number<int>() == 2);
    BOOST_TEST(answer.at("deliveries").to_number<int>() == 6); // each also to the subscription

    const auto table = test::cli(h, {"stats"});
    BOOST_TEST(table.code == 0);
    BOOST_TEST(table.out.find("SLOT") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(plugins_without_a_plugins_dir_says_so, fixture)
{
    const auto table = test::cli(h, {"plugins"});
    BOOST_TEST(table.code == 0);
    BOOST_TEST(table.out.find("started without --plugins-dir") != std::string::npos);
    BOOST_TEST(test::cli(h, {"plugins", "--json"}).json().at("plugins").as_array().empty());
}

BOOST_AUTO_TEST_CASE(plugins_lists_state_pid_and_restarts)
{
    test::temp_dir plugins;
    test::write_manifest(plugins.path, "quitter",
                         R"({"name": "quitter", "executable": "/bin/false", "restart": "never"})");
    test::host h({"--plugins-dir", plugins.path.string()});
    BOOST_REQUIRE(test::eventually([&] {
        const auto answer = test::cli(h, {"plugins", "--json"}).json();
        return answer.at("plugins").as_array().at(0).at("state").as_string() == "stopped";
    }));
    const auto answer = test::cli(h, {"plugins", "--json"}).json();
    const auto& p = answer.at("plugins").as_array().at(0);
    BOOST_TEST(p.at("last_exit").at("code").to_number<int>() == 1);
    BOOST_TEST(p.at("restarts").to_number<int>() == 0);
    const auto table = test::cli(h, {"plugins"});
    BOOST_TEST(table.out.find("quitter  stopped  -    0         status 1") != std::string::npos,
               table.out);
}

BOOST_AUTO_TEST_CASE(stop_returns_once_the_host_is_gone)
{
    test::host h;
    const auto r = test::cli(h, {"stop", "--json"});
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.json().at("stopped").as_bool());
    BOOST_TEST(h.process().wait_exit(5s).value_or(-1) == 0);
    BOOST_TEST(!std::filesystem::exists(h.socket()));
}

BOOST_AUTO_TEST_CASE(usage_help_and_no_host_have_their_own_exit_codes)
{
    test::temp_dir nowhere;
    test::host h;
    for (const char* command : {"ls", "info", "send", "tail", "plugins", "stats", "stop"}) {
        const auto help = test::cli(h, {command, "--help"});
        BOOST_TEST_CONTEXT(command)
        {
            BOOST_TEST(help.code == 0);
            BOOST_TEST(help.out.find(std::string("usage: slotbus ") + command) == 0u);
        }
    }
    BOOST_TEST(test::cli(h, {"--help"}).code == 0);
    BOOST_TEST(test::cli(h, {}).code == 2);
    BOOST_TEST(test::cli(h, {"frobnicate"}).code == 2);
    BOOST_TEST(test::cli(h, {"ls", "--no-such-option"}).code == 2);
    const auto gone = test::cli(h, {"--address", (nowhere.path / "none.sock").string(), "ls"});
    BOOST_TEST(gone.code == 69);
    BOOST_TEST(gone.err.find("no host answers on") != std::string::npos);
}

namespace {

/// Waits until the host lists a slot at `path` (a CLI's slot is up).
bool listed(const test::host& h, const std::string& path)
{
    return test::eventually([&] {
        const auto answer = test::cli(h, {"ls", path, "--json"}).json();
        return !answer.at("slots").as_array().empty();
    });
}

/// Waits until exactly one tail's temporary slot is up (the one before it gone).
bool one_tail_open(const test::host& h)
{
    return test::eventually([&] {
        const auto answer = test::cli(h, {"ls", "slotbus/cli", "--json"}).json();
        return answer.at("slots").as_array().size() == 1;
    });
}

} // namespace

BOOST_FIXTURE_TEST_CASE(tail_filters_by_type_and_source_and_prints_raw_or_pretty, fixture)
{
    test::child typed(SLOTBUS_CLI_PATH, {"tail", "feed/**", "--type", "orders.*", "--count", "2"},
                      {h.env()});
    BOOST_REQUIRE(listed(h, "slotbus/cli"));
    BOOST_TEST(test::cli(h, {"send", "feed/a", R"({"n":1})", "--type", "audit.seen"}).code == 0);
    BOOST_TEST(test::cli(h, {"send", "feed/a", R"({"n":2})", "--type", "orders.created"}).code ==
               0);
    BOOST_TEST(test::cli(h, {"send", "feed/a", "not an envelope"}).code == 0);
    BOOST_TEST(
        test::cli(h, {"send", "feed/b", "3", "--type", "orders.cancelled", "--source", "/tills/7"})
            .code == 0);
    BOOST_REQUIRE(typed.wait_exit(10s).value_or(-1) == 0);
    BOOST_REQUIRE_EQUAL(typed.lines().size(), 2u); // the audit event and the raw record left out
    BOOST_TEST(typed.lines()[0].find("orders.created") != std::string::npos, typed.lines()[0]);
    BOOST_TEST(typed.lines()[1].find("orders.cancelled  /tills/7  3") != std::string::npos,
               typed.lines()[1]);

    // --source, --pretty: the envelope indented, its data as given.
    test::child pretty(SLOTBUS_CLI_PATH,
                       {"tail", "feed/**", "--source", "/tills/*", "--pretty", "--count", "1"},
                       {h.env()});
    BOOST_REQUIRE(one_tail_open(h));
    test::cli(h, {"send", "feed/a", R"({"n":4})", "--type", "orders.created"});
    test::cli(h, {"send", "feed/a", R"({"price":9.5})", "--type", "orders.created", "--source",
                  "/tills/8"});
    BOOST_REQUIRE(pretty.wait_exit(10s).value_or(-1) == 0);
    const auto text = pretty.stdout_text();
    BOOST_TEST(text.find("\n  \"source\": \"/tills/8\",\n") != std::string::npos, text);
    BOOST_TEST(text.find("\n  \"data\": {\n    \"price\": 9.5\n  }\n}") != std::string::npos, text);
    BOOST_TEST(json::parse(text).at("data").at("price").as_double() == 9.5);

    // --raw: bytes as they are, envelope or not.
    test::child raw(SLOTBUS_CLI_PATH, {"tail", "feed/**", "--raw", "--count", "2"}, {h.env()});
    BOOST_REQUIRE(one_tail_open(h));
    test::cli(h, {"send", "feed/a", "plain bytes"});
    test::cli(h, {"send", "feed/a", "{\"n\":5}", "--type", "orders.created"});
    BOOST_REQUIRE(raw.wait_exit(10s).value_or(-1) == 0);
    BOOST_REQUIRE_EQUAL(raw.lines().size(), 2u);
    BOOST_TEST(raw.lines()[0] == "plain bytes");
    BOOST_TEST(json::parse(raw.lines()[1]).at("type").as_string() == "orders.created");

    const auto both = test::cli(h, {"tail", "feed/**", "--raw", "--type", "x"});
    BOOST_TEST(both.code == 2);
    BOOST_TEST(both.err.find("--raw prints records unparsed") != std::string::npos, both.err);
    BOOST_TEST(test::cli(h, {"tail", "feed/**", "--raw", "--pretty"}).code == 2);
}

BOOST_AUTO_TEST_CASE(req_and_reply_ask_and_answer_like_nats_req_and_reply)
{
    test::host h;
    test::child echo(SLOTBUS_CLI_PATH, {"reply", "svc/echo", "--count", "1"}, {h.env()});
    test::child fixed(SLOTBUS_CLI_PATH,
                      {"reply", "svc/health", R"({"status":"ok"})", "--type", "health.pong"},
                      {h.env()});
    BOOST_REQUIRE(listed(h, "svc/echo"));
    BOOST_REQUIRE(listed(h, "svc/health"));

    const auto echoed = test::cli(h, {"req", "svc/echo", R"({"n":1.5})"});
    BOOST_TEST(echoed.code == 0, echoed.err);
    BOOST_TEST(echoed.out == "{\"n\":1.5}\n");
    BOOST_REQUIRE(echo.wait_exit(10s).value_or(-1) == 0); // --count 1: done
    BOOST_TEST(echo.stdout_text() == "slotbus.request  /clients/slotbus  {\"n\":1.5}\n");

    const auto pong = test::cli(h, {"req", "svc/health", "--type", "health.ping", "--json"});
    BOOST_TEST(pong.code == 0, pong.err);
    const auto reply = pong.json();
    BOOST_TEST(reply.at("type").as_string() == "health.pong");
    BOOST_TEST(reply.at("data").at("status").as_string() == "ok");
    BOOST_TEST(!reply.at("correlationid").as_string().empty());
    BOOST_TEST(fixed.wait_for_line("health.ping  /clients/slotbus  null"));

    // Nobody there: at once. Somebody there who never answers: the timeout.
    const auto nobody = test::cli(h, {"req", "svc/none", "x"});
    BOOST_TEST(nobody.code == 1);
    BOOST_TEST(nobody.err.find("nothing receives it (error 2)") != std::string::npos, nobody.err);
    connection bus;
    bus.connect(h.socket());
    auto silent = server_slot::create(bus, "svc/silent");
    const auto late = test::cli(h, {"req", "svc/silent", "x", "--timeout", "200"});
    BOOST_TEST(late.code == 1);
    BOOST_TEST(late.err.find("no reply within 200 ms (error 121)") != std::string::npos, late.err);
    BOOST_TEST(silent.info().message_count == 1u);

    // A record that is not a request is reported, not answered, and the
    // replier goes on.
    test::cli(h, {"send", "svc/health", "not an envelope"});
    test::cli(h, {"send", "svc/health", "{}", "--type", "health.event"});
    BOOST_TEST(test::cli(h, {"req", "svc/health", "--type", "health.ping"}).code == 0);
    const auto err = fixed.stderr_text();
    BOOST_TEST(err.find("a record that is not an envelope") != std::string::npos, err);
    BOOST_TEST(err.find("health.event has no replyto") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(held_writers_show_in_ls_info_stats_and_the_log)
{
    test::host h({"--max-record-size", "1024", "--slow-after", "60000"});
    connection bus;
    bus.connect(h.socket());
    slot_options small;
    small.byte_budget = 2048;
    auto full = server_slot::create(bus, "held/slot", small);
    std::thread writer([&] { // its third write waits for room
        connection w;
        w.connect(h.socket());
        auto slot = client_slot::open(w, "held/slot");
        for (int i = 0; i < 4; ++i)
            slot.write(boost::asio::buffer(std::string(900, 'h')));
    });
    BOOST_REQUIRE(test::eventually([&] {
        const auto answer = test::cli(h, {"ls", "held", "--json"}).json();
        const auto* s = slot_named(answer, "held\\slot");
        return s && s->at("held_writers").to_number<int>() == 1 &&
               s->at("held_ms").to_number<int>() >= 1100;
    }));
    const auto ls = test::cli(h, {"ls", "held"});
    BOOST_TEST(ls.out.find(", 1 writer held ") != std::string::npos, ls.out);
    const auto info = test::cli(h, {"info", "held/slot"});
    BOOST_TEST(std::regex_search(info.out, std::regex(R"(\nheld writers: +1, for \d\.\d s\n)")),
               info.out);
    BOOST_TEST(std::regex_search(info.out, std::regex(R"(\nslow: +no \(marked 0 times\)\n)")),
               info.out);
    const auto stats = test::cli(h, {"stats"});
    BOOST_TEST(stats.out.find("1 writer held, rss") != std::string::npos, stats.out);
    BOOST_TEST(stats.out.find("  HELD\n") != std::string::npos, stats.out);
    BOOST_TEST(stats.out.find("  1 writer held ") != std::string::npos, stats.out);
    BOOST_TEST(
        test::eventually(
            [&] {
                return h.log().find(
                           "slot \\\\.\\mailslot\\held\\slot has held 1 writer back for 1.") !=
                       std::string::npos;
            },
            5s),
        h.log());
    for (int i = 0; i < 4; ++i)
        (void)full.read();
    writer.join();
    BOOST_TEST(
        test::eventually(
            [&] {
                return h.log().find(
                           "slot \\\\.\\mailslot\\held\\slot holds no writers back any more") !=
                       std::string::npos;
            },
            5s),
        h.log());
    // A level and a timestamp on every line the host logs.
    std::istringstream lines(h.log());
    int checked = 0;
    for (std::string line; std::getline(lines, line);)
        if (line.find(" has held 1 writer back") != std::string::npos) {
            ++checked;
            BOOST_TEST(std::regex_match(
                           line, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warning )"
                                            R"(slotbusd: slot .*)")),
                       line);
        }
    BOOST_TEST(checked == 1);
    const auto quiet = test::cli(h, {"ls", "held"});
    BOOST_TEST(quiet.out.find("writer held") == std::string::npos, quiet.out);
}

BOOST_AUTO_TEST_CASE(stats_watch_prints_rates_a_line_an_interval)
{
    test::host h;
    connection bus;
    bus.connect(h.socket());
    auto inbox = server_slot::create(bus, "rates/inbox");
    std::atomic<bool> done = false;
    std::thread writer([&] {
        connection w;
        w.connect(h.socket());
        auto slot = client_slot::open(w, "rates/inbox");
        while (!done) {
            slot.write(boost::asio::buffer(std::string("tick")));
            std::this_thread::sleep_for(5ms);
        }
    });
    const auto watch =
        test::cli(h, {"stats", "--watch", "--interval", "300", "--count", "3", "--json"});
    done = true;
    writer.join();
    BOOST_TEST(watch.code == 0, watch.err);
    std::istringstream lines(watch.out);
    int samples = 0;
    for (std::string line; std::getline(lines, line); ++samples) {
        const auto sample = json::parse(line);
        const auto in = sample.at("records_in_per_s").to_number<double>();
        BOOST_TEST(in > 10.0, line); // ~200 a second, minus the machine's hiccups
        BOOST_TEST(in < 400.0, line);
        BOOST_TEST(sample.at("interval_ms").to_number<double>() >= 290.0);
        BOOST_TEST(sample.at("connections").to_number<int>() >= 2);
    }
    BOOST_TEST(samples == 3);

    const auto table = test::cli(h, {"stats", "--watch", "--interval", "100", "--count", "1"});
    BOOST_TEST(table.code == 0);
    BOOST_TEST(table.out.starts_with("TIME  "), table.out);
    BOOST_TEST(table.out.find("IN/S") != std::string::npos);
    BOOST_TEST(std::count(table.out.begin(), table.out.end(), '\n') == 2);
    BOOST_TEST(test::cli(h, {"stats", "--watch", "--interval", "5"}).code == 2);
}

BOOST_AUTO_TEST_CASE(bench_measures_the_running_host_like_nats_bench)
{
    test::host h;
    // Two publishers and two subscribers: every record reaches both, none lost.
    const auto run = test::cli(
        h, {"bench", "--pub", "2", "--sub", "2", "--msgs", "4000", "--size", "64", "--json"}, 60s);
    BOOST_TEST_REQUIRE(run.code == 0, run.err);
    const auto result = run.json();
    BOOST_TEST(result.at("records").to_number<int>() == 4000);
    BOOST_TEST(result.at("lost").to_number<int>() == 0);
    BOOST_TEST(result.at("published_per_s").to_number<double>() > 0);
    BOOST_TEST(result.at("received_per_s").to_number<double>() > 0);
    const auto per_s = result.at("received_per_s").to_number<double>();
    BOOST_TEST(std::abs(result.at("received_bytes_per_s").to_number<double>() - per_s * 64) <=
               per_s * 1e-9);
    const auto& latency = result.at("latency_ns");
    const auto p50 = latency.at("p50").to_number<std::int64_t>(),
               p99 = latency.at("p99").to_number<std::int64_t>(),
               p999 = latency.at("p999").to_number<std::int64_t>(),
               max = latency.at("max").to_number<std::int64_t>();
    BOOST_TEST(p50 > 0);
    BOOST_TEST(p50 <= p99);
    BOOST_TEST(p99 <= p999);
    BOOST_TEST(p999 <= max);
    // Its slots go with it.
    BOOST_TEST(test::eventually([&] {
        return test::cli(h, {"ls", "bench", "--json"}).json().at("slots").as_array().empty();
    }));

    // The table people read.
    const auto table = test::cli(h, {"bench", "--msgs", "500"}, 60s);
    BOOST_TEST(table.code == 0, table.err);
    BOOST_TEST(table.out.find("1 publisher, 1 subscriber, 500 records of 128 B on bench/") == 15u,
               table.out);
    BOOST_TEST(table.out.find("none lost") != std::string::npos, table.out);
    BOOST_TEST(std::regex_search(table.out, std::regex("latency +p50 [0-9.]+ [um]s +p99 ")),
               table.out);

    // --rate paces the publishers: 300 records at 3000/s cannot take under 0.1 s.
    const auto start = std::chrono::steady_clock::now();
    const auto paced = test::cli(h, {"bench", "--msgs", "300", "--rate", "3000", "--json"}, 60s);
    BOOST_TEST(paced.code == 0, paced.err);
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 95ms));
    BOOST_TEST(paced.json().at("published_per_s").to_number<double>() <= 3300);

    // Bad numbers are usage errors, said in one line.
    const auto tiny = test::cli(h, {"bench", "--size", "4"});
    BOOST_TEST(tiny.code == 2);
    BOOST_TEST(tiny.err.find("--size must be 8 to 1048576 bytes") != std::string::npos, tiny.err);
    BOOST_TEST(test::cli(h, {"bench", "--sub", "0"}).code == 2);
    test::temp_dir nowhere;
    BOOST_TEST(test::cli(h, {"--address", (nowhere.path / "none.sock").string(), "bench"}).code ==
               69);
}

BOOST_AUTO_TEST_CASE(plugins_enable_links_a_shipped_manifest_and_disable_removes_it)
{
    test::temp_dir shipped, mine;
    // A shipped plugin: its executable beside its manifest, found through the link.
    const auto exe = shipped.path / "sleeper";
    {
        std::ofstream(exe) << "#!/bin/sh\nexec sleep 30\n";
    }
    std::filesystem::permissions(exe, std::filesystem::perms::owner_all);
    test::write_manifest(shipped.path, "sleeper",
                         R"({"name": "sleeper", "executable": "sleeper",
                             "description": "sleeps, for the test"})");
    test::write_manifest(mine.path, "own", R"({"name": "own", "executable": "/bin/sleep",
                                              "args": ["30"]})");
    test::host h({"--plugins-dir", mine.path.string()});
    const std::vector<std::string> dirs{"--from", shipped.path.string(), "--to",
                                        mine.path.string()};
    auto with_dirs = [&](std::vector<std::string> args) {
        args.insert(args.end(), dirs.begin(), dirs.end());
        return args;
    };

    const auto listed_before = test::cli(h, with_dirs({"plugins", "available"}));
    BOOST_TEST(listed_before.code == 0);
    BOOST_TEST(listed_before.out.find("sleeper  no       sleeps, for the test") !=
                   std::string::npos,
               listed_before.out);

    const auto on = test::cli(h, with_dirs({"plugins", "enable", "sleeper"}));
    BOOST_TEST(on.code == 0, on.err);
    BOOST_TEST(on.out.find("the host has read its plugins again") != std::string::npos, on.out);
    BOOST_TEST(std::filesystem::is_symlink(mine.path / "sleeper.json"));
    BOOST_TEST(test::eventually([&] {
        const auto p = test::plugin_entry(h, "sleeper");
        return !p.is_null() && p.at("state").as_string() == "running";
    }));
    const auto available = test::cli(h, with_dirs({"plugins", "available", "--json"})).json();
    BOOST_TEST(available.at("plugins").at(0).at("enabled").as_bool());
    BOOST_TEST(test::cli(h, with_dirs({"plugins", "enable", "sleeper"})).out.find("already") !=
               std::string::npos);

    // disable removes only the link, and the host stops the plugin.
    const auto own = test::cli(h, with_dirs({"plugins", "disable", "own"}));
    BOOST_TEST(own.code == 1);
    BOOST_TEST(own.err.find("a manifest of its own") != std::string::npos, own.err);
    BOOST_TEST(std::filesystem::exists(mine.path / "own.json"));
    const auto off = test::cli(h, with_dirs({"plugins", "disable", "sleeper"}));
    BOOST_TEST(off.code == 0, off.err);
    BOOST_TEST(!std::filesystem::exists(mine.path / "sleeper.json"));
    BOOST_TEST(std::filesystem::exists(exe)); // the shipped files stay
    BOOST_TEST(test::eventually([&] { return test::plugin_entry(h, "sleeper").is_null(); }));

    const auto unknown = test::cli(h, with_dirs({"plugins", "enable", "nothing"}));
    BOOST_TEST(unknown.code == 1);
    BOOST_TEST(unknown.err.find("no plugin nothing in " + shipped.path.string()) !=
                   std::string::npos,
               unknown.err);
}
