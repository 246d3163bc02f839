#define BOOST_TEST_MODULE nats_bridge
// The NATS bridge between two real hosts through a real nats-server (Debian's,
// on a free loopback port, JetStream in a temporary directory): each host runs
// the bridge as its plugin, from a manifest, as an operator would.
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <deque>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace slotbus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

/// A loopback port nothing listens on now.
int free_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// nats-server with JetStream, its store in `dir`; restartable on the same port and store.
class nats_server {
public:
    explicit nats_server(fs::path dir, std::vector<std::string> extra = {})
        : dir_(std::move(dir)), port_(free_port()), extra_(std::move(extra))
    {
        start();
    }

    void start()
    {
        std::vector<std::string> args{"-a",  "127.0.0.1", "-p",         std::to_string(port_),
                                      "-js", "-sd",       dir_.string()};
        args.insert(args.end(), extra_.begin(), extra_.end());
        process_ = std::make_unique<test::child>("/usr/sbin/nats-server", args);
        BOOST_REQUIRE_MESSAGE(test::eventually(
                                  [&] {
                                      return process_->stderr_text().find("Server is ready") !=
                                             std::string::npos;
                                  },
                                  20s),
                              process_->stderr_text());
    }
    void kill()
    {
        process_->signal(SIGKILL);
        (void)process_->wait_exit(5s);
    }
    [[nodiscard]] std::string url(std::string_view scheme = "nats") const
    {
        return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_);
    }

private:
    fs::path dir_;
    int port_;
    std::vector<std::string> extra_;
    std::unique_ptr<test::child> process_;
};

/// A host running the bridge with `config` (its routes), and what it publishes as status.
struct bridged_host {
    bridged_host(const nats_server& nats, const std::string& origin, const json::object& routes,
                 std::vector<std::string> host_args = {})
    {
        auto config = routes;
        if (!config.contains("servers"))
            config["servers"] = json::array{json::value(nats.url())};
        config["origin"] = origin;
        config["reconnect_wait_ms"] = 100;
        config["status_interval_ms"] = 200;
        // Beside the plugins dir, not in it: every .json there is a manifest.
        const auto config_file = config_dir.path / "bridge.json";
        {
            std::ofstream out(config_file);
            out << json::serialize(config);
        }
        fs::permissions(config_file,
                        fs::perms::owner_read | fs::perms::owner_write); // may hold a secret
        test::write_manifest(
            files.path, "nats-bridge",
            std::string(R"({"name": "nats-bridge", "executable": ")") + SLOTBUS_NATS_BRIDGE_PATH +
                R"(", "args": ["--config", ")" + config_file.string() +
                R"("], "permissions": [{"allow": ["create"], "names": ["slotbus/nats-bridge/**"]},
                    {"allow": ["read", "write"], "names": ["events/**"]},
                    {"allow": ["write"], "names": ["slotbus/nats-bridge/**"]}],
                  "restart": "on-failure"})");
        host_args.insert(host_args.end(), {"--plugins-dir", files.path.string()});
        args = host_args;
        restart();
    }
    /// The host (and so its bridge) stopped and started again.
    void restart()
    {
        h.reset();
        h = std::make_unique<test::host>(args);
    }

    /// The bridge's last status envelope's data (its figures).
    json::object status()
    {
        const auto r = test::cli(
            *h, {"tail", "slotbus/nats-bridge/**", "--count", "1", "--json", "--for", "3000"});
        BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
        const auto line = r.out.substr(0, r.out.find('\n'));
        return json::parse(line).at("data").as_object();
    }
    std::uint64_t figure(const char* name) { return status().at(name).to_number<std::uint64_t>(); }
    bool logged(std::string_view text) const { return h->log().find(text) != std::string::npos; }

    test::temp_dir files, config_dir;
    std::vector<std::string> args;
    std::unique_ptr<test::host> h;
};

json::object routes(std::string_view text)
{
    return json::parse(text).as_object();
}

/// events/** to the stream EVENTS (made if missing), and from it into a durable pull consumer.
json::object jetstream_export()
{
    return routes(R"({"streams": [{"name": "EVENTS", "subjects": ["events.>"]}],
                      "exports": [{"from": "events/**", "mode": "jetstream"}]})");
}
json::object jetstream_import(int batch)
{
    auto r = routes(R"({"streams": [{"name": "EVENTS", "subjects": ["events.>"]}],
                        "imports": [{"subject": "events.>", "mode": "jetstream",
                                     "stream": "EVENTS", "durable": "beta"}]})");
    r["imports"].as_array()[0].as_object()["batch"] = batch;
    r["ack_wait_ms"] = 1000; // redeliveries come within the tests' waits
    return r;
}

/// An envelope with a numbered id, as a publisher writes it.
std::string order_event(int n)
{
    return json::serialize(json::object{{"specversion", "1.0"},
                                        {"id", "order-" + std::to_string(n)},
                                        {"source", "/orders/test"},
                                        {"type", "orders.created"},
                                        {"subject", "events/orders/eu"},
                                        {"datacontenttype", "application/json"},
                                        {"data", json::object{{"n", n}}}});
}

/// A subscriber of `pattern` on host `h`, in this test: its own connection and slot.
struct local_reader {
    local_reader(const test::host& h, const std::string& slot, const std::string& pattern,
                 std::uint32_t budget = 0)
        : bus(connection_options{"test reader", 16}) // pushed ahead of reads: 16 at most
    {
        bus.connect(h.socket());
        slot_options o;
        o.byte_budget = budget;
        o.read_timeout = 100; // ms: read() polls until its own deadline
        inbox.emplace(server_slot::create(bus, slot, o));
        subscription = inbox->subscribe(pattern);
    }
    /// Reads what has come within `wait`, up to `max` records.
    std::vector<received_record> read(std::size_t max, std::chrono::milliseconds wait)
    {
        std::vector<received_record> out;
        const auto until = std::chrono::steady_clock::now() + wait;
        while (out.size() < max && std::chrono::steady_clock::now() < until) {
            std::error_code ec;
            auto r = inbox->read_record(ec);
            if (!ec)
                out.push_back(std::move(r));
        }
        return out;
    }
    connection bus;
    std::optional<server_slot> inbox;
    std::optional<slotbus::subscription> subscription;
};

int number_of(const received_record& r)
{
    return json::parse(r.data).at("data").at("n").to_number<int>();
}

} // namespace

BOOST_AUTO_TEST_CASE(core_events_published_on_one_host_reach_the_other_once_in_order)
{
    test::temp_dir store;
    nats_server nats(store.path);
    bridged_host a(nats, "alpha", routes(R"({"exports": [{"from": "events/orders/**"}]})"));
    bridged_host b(nats, "beta", routes(R"({"imports": [{"subject": "events.orders.>"}]})"));
    BOOST_REQUIRE(test::eventually([&] { return b.logged("importing events.orders.>"); }, 20s));
    BOOST_REQUIRE(test::eventually([&] { return a.logged("connected to"); }, 20s));
    local_reader reader(*b.h, "app/inbox", "events/orders/**");

    connection writer;
    writer.connect(a.h->socket());
    auto slot = client_slot::open(writer, "events/orders/eu");
    constexpr int count = 2000;
    for (int n = 1; n <= count; ++n)
        (void)slot.write(order_event(n));
    const auto got = reader.read(count, 20s);
    BOOST_REQUIRE_EQUAL(got.size(), static_cast<std::size_t>(count));
    for (int n = 1; n <= count; ++n)
        BOOST_TEST(number_of(got[static_cast<std::size_t>(n - 1)]) == n);
    // The bridge wrote them; their source says which host they came from.
    BOOST_TEST(got.front().sender().plugin == "nats-bridge");
    BOOST_TEST(json::parse(got.front().data).at("source").as_string() == "/orders/test");
    BOOST_TEST(reader.read(1, 500ms).empty()); // nothing twice
    // A local plugin's source is this host's claim: it travels naming the host.
    auto plugin_event = json::parse(order_event(count + 1)).as_object();
    plugin_event["source"] = "/plugins/metrics";
    (void)slot.write(json::serialize(plugin_event));
    const auto bridged = reader.read(1, 5s);
    BOOST_REQUIRE(bridged.size() == 1u);
    BOOST_TEST(json::parse(bridged.front().data).at("source").as_string() ==
               "//alpha/plugins/metrics");
    BOOST_TEST(test::eventually([&] { return a.figure("exported") == count + 1; }));
    BOOST_TEST(b.figure("gaps") == 0u);
}

BOOST_AUTO_TEST_CASE(both_ways_at_once_and_nothing_loops)
{
    test::temp_dir store;
    nats_server nats(store.path);
    const auto both = routes(R"({"exports": [{"from": "events/**"}],
                                 "imports": [{"subject": "events.>"}]})");
    bridged_host a(nats, "alpha", both), b(nats, "beta", both);
    BOOST_REQUIRE(test::eventually(
        [&] { return a.logged("importing events.>") && b.logged("importing events.>"); }, 20s));
    local_reader on_a(*a.h, "app/a", "events/**"), on_b(*b.h, "app/b", "events/**");
    connection wa, wb;
    wa.connect(a.h->socket());
    wb.connect(b.h->socket());
    auto from_a = client_slot::open(wa, "events/from/a");
    auto from_b = client_slot::open(wb, "events/from/b");
    for (int n = 1; n <= 100; ++n) {
        (void)from_a.write(order_event(n));
        (void)from_b.write(order_event(1000 + n));
    }
    // Each host's reader: its own 100 (local) and the other's 100 (bridged), no more.
    BOOST_TEST(on_a.read(200, 10s).size() == 200u);
    BOOST_TEST(on_b.read(200, 10s).size() == 200u);
    BOOST_TEST(on_a.read(1, 500ms).empty());
    BOOST_TEST(on_b.read(1, 500ms).empty());
    // What a bridge imported is not exported again, and its own do not come back.
    // Neither way round: what A's bridge imported it does not export (loops),
    // and what A exported comes back to it from NATS but is not imported (echoes).
    BOOST_TEST(test::eventually([&] {
        return a.figure("loops") >= 100u && a.figure("echoes") >= 100u &&
               b.figure("loops") >= 100u && b.figure("echoes") >= 100u;
    }));
    BOOST_TEST(a.figure("exported") == 100u);
    BOOST_TEST(b.figure("exported") == 100u);
}

BOOST_AUTO_TEST_CASE(jetstream_loses_nothing_and_delivers_nothing_twice_across_a_server_restart)
{
    test::temp_dir store;
    nats_server nats(store.path);
    bridged_host a(nats, "alpha", jetstream_export());
    bridged_host b(nats, "beta", jetstream_import(32));
    BOOST_REQUIRE(test::eventually([&] { return b.logged("importing events.>"); }, 20s));
    local_reader reader(*b.h, "app/inbox", "events/**");
    connection writer;
    writer.connect(a.h->socket());
    auto slot = client_slot::open(writer, "events/orders/eu");
    constexpr int count = 3000;
    std::deque<std::string> sent; // what async_write is given lives until it is written
    std::vector<received_record> got;
    for (int n = 1; n <= count; ++n) {
        (void)slot.async_write(boost::asio::buffer(sent.emplace_back(order_event(n))),
                               boost::asio::detached);
        if (n % 100 == 0)
            writer.run_for(10ms);
        if (n == count / 2) { // mid-stream: the server dies and comes back
            nats.kill();
            writer.run_for(500ms);
            nats.start();
        }
    }
    writer.run_for(100ms);
    while (got.size() < count) {
        auto more = reader.read(count - got.size(), 30s);
        if (more.empty())
            break;
        for (auto& r : more)
            got.push_back(std::move(r));
    }
    std::set<int> numbers;
    for (const auto& r : got)
        numbers.insert(number_of(r));
    BOOST_TEST(got.size() == static_cast<std::size_t>(count));     // none twice
    BOOST_TEST(numbers.size() == static_cast<std::size_t>(count)); // none lost
    BOOST_TEST(reader.read(1, 2500ms).empty()); // past ack_wait: no redelivery written again
    BOOST_TEST(a.figure("disconnects") >= 1u);
    // B's host restarts: its durable consumer is where it was, nothing comes
    // again, and what is written next comes once.
    b.restart();
    BOOST_REQUIRE(test::eventually([&] { return b.logged("importing events.>"); }, 20s));
    local_reader again(*b.h, "app/inbox", "events/**");
    BOOST_TEST(again.read(1, 2s).empty());
    for (int n = count + 1; n <= count + 10; ++n)
        (void)slot.write(order_event(n));
    const auto after = again.read(20, 5s);
    BOOST_REQUIRE(after.size() == 10u);
    BOOST_TEST(number_of(after.front()) == count + 1);
}

BOOST_AUTO_TEST_CASE(core_routes_count_what_a_server_restart_lost_and_keep_order)
{
    test::temp_dir store;
    nats_server nats(store.path);
    bridged_host a(nats, "alpha", routes(R"({"exports": [{"from": "events/**"}]})"));
    bridged_host b(nats, "beta", routes(R"({"imports": [{"subject": "events.>"}]})"));
    BOOST_REQUIRE(test::eventually([&] { return b.logged("importing events.>"); }, 20s));
    BOOST_REQUIRE(test::eventually([&] { return a.logged("connected to"); }, 20s));
    local_reader reader(*b.h, "app/inbox", "events/**");
    connection writer;
    writer.connect(a.h->socket());
    auto slot = client_slot::open(writer, "events/orders/eu");
    constexpr int count = 3000;
    auto write = [&](int from, int to) {
        for (int n = from; n <= to; ++n)
            (void)slot.write(order_event(n));
    };
    write(1, 1000);
    nats.kill();
    write(1001, 2000); // while NATS is away: held by A's bridge, or lost on the way
    nats.start();
    BOOST_REQUIRE(test::eventually(
        [&] { return a.figure("reconnects") >= 1u && b.figure("reconnects") >= 1u; }, 20s));
    write(2001, count);
    std::vector<int> got;
    std::uint64_t told = 0; // the gaps its reader was told of, before the records after them
    for (;;) {
        auto more = reader.read(count, 2s);
        if (more.empty())
            break;
        for (const auto& r : more) {
            if (r.missed_before)
                BOOST_TEST(number_of(r) - (got.empty() ? 0 : got.back()) - 1 ==
                           static_cast<int>(r.missed_before)); // told exactly where they were
            told += r.missed_before;
            got.push_back(number_of(r));
        }
    }
    BOOST_REQUIRE(!got.empty());
    BOOST_TEST(got.back() == count);
    BOOST_TEST(std::is_sorted(got.begin(), got.end()));
    BOOST_TEST((std::adjacent_find(got.begin(), got.end()) == got.end())); // none twice
    // Every record either came or is counted as a gap: none vanishes untold.
    BOOST_TEST(got.size() + b.figure("gaps") == static_cast<std::size_t>(count));
    BOOST_TEST(told == b.figure("gaps"));
    BOOST_TEST_MESSAGE("core across a restart: " << got.size() << " arrived, "
                                                 << count - static_cast<int>(got.size())
                                                 << " counted as gaps");
}

BOOST_AUTO_TEST_CASE(a_stalled_reader_stops_the_pulls_and_bounds_the_bridge)
{
    test::temp_dir store;
    nats_server nats(store.path);
    bridged_host a(nats, "alpha", jetstream_export());
    bridged_host b(nats, "beta", jetstream_import(16),
                   // The reader may stall for long before its slot is marked slow (and
                   // drops); small records, so a small slot budget is allowed.
                   {"--slow-after", "60000", "--max-record-size", "4096"});
    BOOST_REQUIRE(test::eventually([&] { return b.logged("importing events.>"); }, 20s));
    // A reader whose slot holds about 40 records and who reads none yet.
    local_reader reader(*b.h, "app/slow", "events/**", 8192);
    connection writer;
    writer.connect(a.h->socket());
    auto slot = client_slot::open(writer, "events/orders/eu");
    constexpr int count = 2000;
    std::deque<std::string> sent;
    for (int n = 1; n <= count; ++n)
        (void)slot.async_write(boost::asio::buffer(sent.emplace_back(order_event(n))),
                               boost::asio::detached);
    writer.run_for(200ms);
    BOOST_REQUIRE(test::eventually([&] { return a.figure("exported") == count; }, 20s));
    // B took what the slot holds and one batch; the rest waits in the stream.
    const auto held = b.figure("imported");
    std::this_thread::sleep_for(1s);
    BOOST_TEST(b.figure("imported") == held);
    BOOST_TEST(held < 200u);
    BOOST_TEST(b.figure("in_flight") <= 16u); // the bridge holds one batch at most
    // Read, and everything comes, once each.
    std::set<int> numbers;
    std::size_t records = 0;
    while (records < count) {
        auto more = reader.read(count, 20s);
        if (more.empty())
            break;
        records += more.size();
        for (const auto& r : more)
            numbers.insert(number_of(r));
    }
    BOOST_TEST(records == static_cast<std::size_t>(count));
    BOOST_TEST(numbers.size() == static_cast<std::size_t>(count));
}

BOOST_AUTO_TEST_CASE(a_server_that_wants_a_token_takes_the_right_one_only)
{
    test::temp_dir store;
    nats_server nats(store.path, {"--auth", "s3cret-token"});
    bridged_host good(nats, "alpha", routes(R"({"auth": {"token": "s3cret-token"},
                                 "imports": [{"subject": "events.>"}]})"));
    BOOST_TEST(test::eventually([&] { return good.logged("importing events.>"); }, 20s),
               good.h->log());
    bridged_host bad(
        nats, "beta",
        routes(R"({"auth": {"token": "wrong"}, "imports": [{"subject": "events.>"}]})"));
    std::this_thread::sleep_for(1s);
    BOOST_TEST(!bad.logged("importing"));
    BOOST_TEST(bad.status().at("connected").as_bool() == false);
}

BOOST_AUTO_TEST_CASE(tls_to_nats_trusts_the_configured_ca_only)
{
    // A CA and a certificate for 127.0.0.1 signed by it, made here.
    test::temp_dir store, pki;
    const auto at = [&](const char* f) { return (pki.path / f).string(); };
    {
        std::ofstream(at("san.ext")) << "subjectAltName=IP:127.0.0.1\n";
    }
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    for (const auto& command :
         {"openssl req -x509" + ec + "-keyout " + at("ca.key") + " -out " + at("ca.pem") +
              " -days 1 -subj /CN=slotbus-test-ca",
          "openssl req" + ec + "-keyout " + at("server.key") + " -out " + at("server.csr") +
              " -subj /CN=127.0.0.1",
          "openssl x509 -req -in " + at("server.csr") + " -CA " + at("ca.pem") + " -CAkey " +
              at("ca.key") + " -CAcreateserial -days 1 -extfile " + at("san.ext") + " -out " +
              at("server.pem")})
        BOOST_REQUIRE_MESSAGE(std::system((command + " >/dev/null 2>&1").c_str()) == 0, command);
    nats_server nats(store.path,
                     {"--tls", "--tlscert", at("server.pem"), "--tlskey", at("server.key")});
    auto config = routes(R"({"imports": [{"subject": "events.>"}]})");
    config["servers"] = json::array{json::value(nats.url("tls"))};
    config["tls"] = json::object{{"ca", at("ca.pem")}};
    bridged_host trusting(nats, "alpha", config);
    BOOST_TEST(test::eventually([&] { return trusting.logged("importing events.>"); }, 20s),
               trusting.h->log());
    // Without the CA (the system's trust only), the server's certificate is refused.
    config.erase("tls");
    bridged_host doubting(nats, "beta", config);
    std::this_thread::sleep_for(1s);
    BOOST_TEST(!doubting.logged("importing"));
    BOOST_TEST(doubting.status().at("connected").as_bool() == false);
}

BOOST_AUTO_TEST_CASE(a_secret_in_a_file_others_may_read_is_refused)
{
    test::temp_dir files;
    const auto file = files.path / "loose.json";
    {
        std::ofstream out(file);
        out << R"({"auth": {"token": "t"}, "imports": [{"subject": "x"}]})";
    }
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    test::child bridge(SLOTBUS_NATS_BRIDGE_PATH, {"--config", file.string()});
    BOOST_TEST(bridge.wait_exit().value_or(-1) == 2);
    BOOST_TEST(bridge.stderr_text().find("chmod 600") != std::string::npos, bridge.stderr_text());
}

BOOST_AUTO_TEST_CASE(a_config_that_cannot_map_is_refused_at_start)
{
    test::temp_dir files;
    {
        std::ofstream out(files.path / "bad.json");
        out << R"({"exports": [{"from": "events/v1.2/**"}]})";
    }
    test::child bridge(SLOTBUS_NATS_BRIDGE_PATH, {"--config", (files.path / "bad.json").string()});
    BOOST_TEST(bridge.wait_exit().value_or(-1) == 2);
    BOOST_TEST(bridge.stderr_text().find("exports[0]: from: events\\v1.2\\**: has a '.'") !=
                   std::string::npos,
               bridge.stderr_text());
}
