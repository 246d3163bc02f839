// The web view (plugins/web) under a real host: the page in a real headless
// Chromium, /metrics through a real Prometheus parser, its JSON endpoints,
// and the guards a local admin port needs against hostile clients.
#define BOOST_TEST_MODULE web
#include "browser.hpp"
#include "host_fixture.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <poll.h>
#include <thread>

using namespace slotbus;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

namespace {

struct http_reply {
    int status = 0;
    std::map<std::string, std::string> headers; // names lower-cased
    std::string body;
};

/// One request on a connection of its own, under a deadline.
http_reply request(std::uint16_t port, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& fields = {},
                   http::verb verb = http::verb::get, std::string host = "")
{
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(10s);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::empty_body> req{verb, target, 11};
    req.set(http::field::host, host.empty() ? "127.0.0.1:" + std::to_string(port) : host);
    for (const auto& [k, v] : fields)
        req.set(k, v);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    if (verb == http::verb::head)
        parser.skip(true);
    http::read(stream, buffer, parser);
    http_reply out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
        std::string name(f.name_string());
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(f.value());
    }
    out.body = parser.get().body();
    return out;
}

json::value get_json(std::uint16_t port, const std::string& target)
{
    const auto r = request(port, target);
    BOOST_REQUIRE_MESSAGE(r.status == 200, target << ": " << r.status << " " << r.body);
    BOOST_REQUIRE_EQUAL(r.headers.at("content-type"), "application/json");
    return json::parse(r.body);
}

/// A host running the shipped web manifest (its permissions as shipped) on
/// a free port, looking at the host four times a second.
struct web_host {
    explicit web_host(std::vector<std::string> web_args = {},
                      std::vector<std::string> host_args = {})
    {
        std::ifstream in(SLOTBUS_WEB_MANIFEST);
        std::stringstream text;
        text << in.rdbuf();
        auto manifest = json::parse(text.str()).as_object();
        manifest["executable"] = SLOTBUS_WEB_PATH;
        json::array args{"--port",     "0",  "--port-file", (state.path / "port").string(),
                         "--interval", "250"};
        for (auto& a : web_args)
            args.emplace_back(a);
        manifest["args"] = std::move(args);
        test::write_manifest(plugins.path, "web", json::serialize(manifest));
        host_args.insert(host_args.begin(), {"--plugins-dir", plugins.path.string()});
        h = std::make_unique<test::host>(host_args);
        BOOST_REQUIRE_MESSAGE(test::eventually([&] {
                                  std::ifstream p(state.path / "port");
                                  return p >> port && port != 0;
                              }),
                              "the web plugin never served: " << h->log());
        BOOST_REQUIRE(test::eventually([&] { return request(port, "/healthz").status == 200; }));
    }

    test::temp_dir plugins, state;
    std::unique_ptr<test::host> h;
    std::uint16_t port = 0;
};

/// A raw connection for what a well-behaved client would never send.
struct raw_client {
    explicit raw_client(std::uint16_t port, int receive_buffer = 0) : socket(io)
    {
        socket.open(tcp::v4());
        if (receive_buffer)
            socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
        socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }
    void send(std::string_view text) { asio::write(socket, asio::buffer(text)); }
    /// Reads until `needle` shows up or the peer closes; what came, and whether it closed.
    std::pair<std::string, bool> read_until(std::string_view needle,
                                            std::chrono::milliseconds deadline)
    {
        const auto until = std::chrono::steady_clock::now() + deadline;
        while (got.find(needle) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return {got, false};
            pollfd p{socket.native_handle(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            char buffer[65536];
            boost::system::error_code ec;
            const auto n = socket.read_some(asio::buffer(buffer), ec);
            if (ec)
                return {got, true};
            got.append(buffer, n);
        }
        return {got, false};
    }
    /// The peer has closed, seen without reading what waits.
    bool hung_up()
    {
        pollfd p{socket.native_handle(), POLLRDHUP, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
    }
    asio::io_context io;
    tcp::socket socket;
    std::string got;
};

} // namespace

BOOST_AUTO_TEST_CASE(the_page_in_chromium_shows_a_new_slot_a_published_record_and_moving_counters)
{
    const auto chromium = test::browser::find();
    BOOST_REQUIRE_MESSAGE(chromium,
                          "Debian's chromium is not installed (scripts/setup.sh installs it)");
    web_host web;
    test::browser page(*chromium);
    page.open("http://127.0.0.1:" + std::to_string(web.port) + "/");
    BOOST_REQUIRE_MESSAGE(
        page.wait_for("document.getElementById('state').textContent === 'live'", 10s),
        "the page never went live: " << page.log());
    // The page tails ** from the start: its subscription is up once the host lists it.
    BOOST_REQUIRE(test::eventually(
        [&] { return get_json(web.port, "/subsz").at("count").to_number<int>() >= 1; }));

    connection bus;
    bus.connect(web.h->socket());
    auto inbox = server_slot::create(bus, "orders/web-test");
    const std::string row =
        R"([...document.querySelectorAll('#slots tbody tr[data-name]')].find(tr => tr.dataset.name.endsWith('orders\\web-test')))";
    BOOST_TEST(page.wait_for(row, 5s));
    const auto writes_before = page.evaluate("document.getElementById('t-writes').textContent");

    connection other; // a slot's creator may not write to it
    other.connect(web.h->socket());
    publisher out(other, "web-test");
    const auto marker = "marker-" + std::to_string(::getpid());
    const auto sent = std::chrono::steady_clock::now();
    std::error_code ec;
    BOOST_REQUIRE_EQUAL(out.publish("orders/web-test",
                                    make_envelope(out.source(), "orders.created", "orders/web-test",
                                                  json::object{{"note", marker}}),
                                    ec),
                        2u); // the slot and the page's tail
    BOOST_REQUIRE(!ec);
    BOOST_TEST(page.wait_for("[...document.querySelectorAll('#tail tbody td')].some(td => "
                             "td.textContent.includes('" +
                                 marker + "'))",
                             2s));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - sent);
    BOOST_TEST_MESSAGE("the record showed in the page's tail after " << took.count() << " ms");
    BOOST_TEST(page.evaluate(
                   "[...document.querySelectorAll('#tail tbody tr')][0].children[2].textContent") ==
               "orders.created");
    BOOST_TEST(page.evaluate(
                   "[...document.querySelectorAll('#tail tbody tr')][0].children[3].textContent") ==
               "/clients/web-test");
    // The counters move: the write counted, the slot's queue holds it.
    BOOST_TEST(page.wait_for("document.getElementById('t-writes').textContent !== " +
                                 json::serialize(writes_before),
                             5s));
    BOOST_TEST(page.wait_for(row + ".children[1].textContent.startsWith('1 ')", 5s));
    // The plugin itself, running under the host, with the tail of its log.
    BOOST_TEST(page.wait_for("document.querySelector('#plugins "
                             "tr[data-name=\"web\"]')?.children[1].textContent === 'running'",
                             5s));
    BOOST_TEST(page.evaluate("document.querySelector('#plugins tr[data-name=\"web\"] "
                             "pre').textContent.includes('web: serving')") == true);
    const auto png = fs::path(SLOTBUS_WEB_SCREENSHOT);
    page.screenshot(png);
    BOOST_TEST(fs::file_size(png) > 10000u);
    BOOST_TEST_MESSAGE("screenshot: " << png.string());
}

BOOST_AUTO_TEST_CASE(metrics_parse_as_prometheus_text_and_agree_with_the_host)
{
    web_host web;
    connection bus;
    bus.connect(web.h->socket());
    auto inbox =
        server_slot::create(bus, R"(metrics\"odd"\name)"); // a label value that needs escaping
    connection other;
    other.connect(web.h->socket());
    auto writer = client_slot::open(other, R"(metrics\"odd"\name)");
    for (int i = 0; i < 7; ++i)
        writer.write(asio::buffer(std::string("x")));
    const auto writes = [&] {
        return json::parse(test::cli(*web.h, {"stats", "--json"}).out)
            .at("writes")
            .to_number<int>();
    }();
    // Wait for a look at the host that saw them.
    BOOST_REQUIRE(test::eventually([&] {
        return request(web.port, "/metrics")
                   .body.find(R"(slot="\\\\.\\mailslot\\metrics\\\"odd\"\\name"} 7)") !=
               std::string::npos;
    }));
    const auto text = request(web.port, "/metrics");
    BOOST_TEST(text.headers.at("content-type").starts_with("text/plain; version=0.0.4"));
    test::temp_dir dir;
    std::ofstream(dir.path / "metrics.txt") << text.body;
    // prometheus_client's own parser (Debian's python3-prometheus-client).
    test::child parse("/usr/bin/python3",
                      {SLOTBUS_PARSE_METRICS, (dir.path / "metrics.txt").string()});
    BOOST_REQUIRE_EQUAL(parse.wait_exit(30s).value_or(-1), 0);
    BOOST_TEST_INFO(parse.stderr_text());
    const auto families = json::parse(parse.stdout_text()).as_object();
    const auto sample = [&](const std::string& family, const std::string& name,
                            const json::object& labels = {}) -> double {
        const auto* f = families.if_contains(family);
        BOOST_REQUIRE_MESSAGE(f, "no family " << family);
        for (const auto& s : f->at("samples").as_array())
            if (s.at("name").as_string() == name && s.at("labels").as_object() == labels)
                return s.at("value").to_number<double>();
        BOOST_FAIL("no sample " << name << " " << json::serialize(labels));
        return 0;
    };
    BOOST_TEST(families.at("slotbus_writes").at("type") == "counter");
    BOOST_TEST(sample("slotbus_writes", "slotbus_writes_total") >= writes);
    BOOST_TEST(sample("slotbus_up", "slotbus_up") == 1);
    BOOST_TEST(sample("slotbus_resident_memory_bytes", "slotbus_resident_memory_bytes") > 1e6);
    const json::object slot{{"slot", R"(\\.\mailslot\metrics\"odd"\name)"}};
    BOOST_TEST(sample("slotbus_slot_records_in", "slotbus_slot_records_in_total", slot) == 7);
    BOOST_TEST(sample("slotbus_slot_queued_records", "slotbus_slot_queued_records", slot) == 7);
    BOOST_TEST(sample("slotbus_plugin_up", "slotbus_plugin_up", {{"plugin", "web"}}) == 1);
    BOOST_TEST(sample("slotbus_plugin_restarts", "slotbus_plugin_restarts_total",
                      {{"plugin", "web"}}) == 0);
}

BOOST_AUTO_TEST_CASE(json_endpoints_show_connections_closed_reasons_subscriptions_and_held_writers)
{
    web_host web({}, {"--max-record-size", "1024", "--slow-after", "60000"});
    connection bus;
    bus.connect(web.h->socket());
    slot_options small;
    small.byte_budget = 2048;
    auto held = server_slot::create(bus, "web/held", small);
    auto watcher = server_slot::create(bus, "web/watcher");
    auto sub = watcher.subscribe("web/topics/**");

    // A writer the full slot holds back, in a thread (its write blocks).
    std::thread writer([&] {
        connection w;
        w.connect(web.h->socket());
        auto slot = client_slot::open(w, "web/held");
        for (int i = 0; i < 10; ++i)
            slot.write(asio::buffer(std::string(900, 'h')));
    });
    BOOST_TEST(test::eventually([&] {
        const auto slotz = get_json(web.port, "/slotz");
        for (const auto& s : slotz.at("slots").as_array())
            if (s.at("path") == R"(web\held)")
                return s.at("held_writers").to_number<int>() == 1 &&
                       s.at("held_ms").to_number<int>() > 0;
        return false;
    }));
    for (int i = 0; i < 10; ++i)
        held.read();
    writer.join();

    // A client that sends garbage, and one that leaves politely.
    {
        asio::io_context io;
        asio::local::stream_protocol::socket s(io);
        s.connect(asio::local::stream_protocol::endpoint(web.h->socket()));
        asio::write(s, asio::buffer(std::string("\x7f\xff\xff\xff\xff garbage", 14)));
        char buffer[256];
        boost::system::error_code ec;
        while (!ec)
            s.read_some(asio::buffer(buffer), ec);
    }
    BOOST_REQUIRE(test::cli(*web.h, {"ls"}).code == 0);
    BOOST_TEST(test::eventually([&] {
        const auto closed = get_json(web.port, "/connz?state=closed").at("closed").as_array();
        bool protocol = false, polite = false;
        for (const auto& c : closed) {
            const std::string reason(c.at("reason").as_string());
            protocol |= reason.find("protocol error") != std::string::npos;
            polite |= c.at("client") == "slotbus-cli" && reason == "closed by the client";
        }
        return protocol && polite;
    }));
    const auto open = get_json(web.port, "/connz");
    BOOST_TEST(open.at("open").to_number<int>() >= 2); // ours and the plugin's
    BOOST_TEST(!open.as_object().contains("closed"));
    bool ours = false;
    for (const auto& c : open.at("connections").as_array())
        ours |= c.at("pid").to_number<int>() == ::getpid() && c.at("handles").to_number<int>() >= 2;
    BOOST_TEST(ours);
    BOOST_TEST(request(web.port, "/connz?state=sideways").status == 400);

    const auto subs = get_json(web.port, "/subsz");
    bool found = false;
    for (const auto& s : subs.at("subscriptions").as_array())
        found |= s.at("pattern") == R"(web\topics\**)";
    BOOST_TEST(found);
    const auto varz = get_json(web.port, "/varz");
    BOOST_TEST(varz.at("pid").to_number<int>() == web.h->process().pid());
    BOOST_TEST(varz.at("writes").to_number<int>() >= 10);
    const auto plugins = get_json(web.port, "/pluginz").at("plugins").as_array();
    BOOST_REQUIRE_EQUAL(plugins.size(), 1u);
    BOOST_TEST(plugins[0].at("log").as_array().size() >= 2); // started, and its "serving" line
    // The host's `logs` question, which the view's log tails come from.
    const auto last = admin(bus, "logs", R"({"name": "web", "lines": 1})");
    BOOST_REQUIRE_EQUAL(last.at("lines").as_array().size(), 1u);
    const auto all = admin(bus, "logs", R"({"name": "web"})");
    BOOST_TEST(json::serialize(all).find("web: serving") != std::string::npos);
    std::error_code logs_ec;
    (void)admin(bus, "logs", R"({"name": "nobody"})", logs_ec);
    BOOST_TEST(logs_ec == error::file_not_found);
    (void)admin(bus, "logs", "not json", logs_ec);
    BOOST_TEST(logs_ec == error::invalid_parameter);
    BOOST_TEST(get_json(web.port, "/hostz").as_object().contains("peers"));
    BOOST_TEST(request(web.port, "/nothing").status == 404);
}

BOOST_AUTO_TEST_CASE(a_page_elsewhere_a_stranger_or_a_flood_gets_nothing)
{
    test::temp_dir secrets;
    const std::string token = "s3cret-token-for-the-web-view";
    std::ofstream(secrets.path / "token") << token << '\n';
    web_host web({"--token-file", (secrets.path / "token").string(), "--max-connections", "8",
                  "--request-timeout", "1000", "--allow-host", "Bus.Example"});
    const auto p = web.port;
    // No token: nothing but /healthz.
    BOOST_TEST(request(p, "/").status == 401);
    BOOST_TEST(request(p, "/metrics").status == 401);
    BOOST_TEST(request(p, "/events").status == 401);
    BOOST_TEST(request(p, "/healthz").status == 200);
    BOOST_TEST(
        request(p, "/varz", {{"Authorization", "Bearer wrong-token-of-the-same-length"}}).status ==
        401);
    const auto page = request(p, "/", {{"Authorization", "Bearer " + token}});
    BOOST_TEST(page.status == 200);
    BOOST_TEST(page.body.find("<title>slotbus</title>") != std::string::npos);
    BOOST_TEST(page.headers.count("access-control-allow-origin") == 0u);
    BOOST_TEST(page.headers.at("content-security-policy").find("default-src 'self'") !=
               std::string::npos);
    BOOST_TEST(page.headers.at("x-frame-options") == "DENY");
    // ?token= once: a cookie for this origin, and the token leaves the address.
    const auto signin = request(p, "/?token=" + token);
    BOOST_TEST(signin.status == 303);
    BOOST_TEST(signin.headers.at("location") == "/");
    const auto cookie = signin.headers.at("set-cookie");
    BOOST_TEST(cookie.find("HttpOnly") != std::string::npos);
    BOOST_TEST(cookie.find("SameSite=Strict") != std::string::npos);
    BOOST_TEST(request(p, "/varz", {{"Cookie", cookie.substr(0, cookie.find(';'))}}).status == 200);

    const std::vector<std::pair<std::string, std::string>> auth{
        {"Authorization", "Bearer " + token}};
    // DNS rebinding: a page from elsewhere reaches 127.0.0.1 with its own name.
    BOOST_TEST(request(p, "/varz", auth, http::verb::get, "attacker.example:" + std::to_string(p))
                   .status == 403);
    BOOST_TEST(request(p, "/varz", auth, http::verb::get, "localhost:9999").status ==
               200); // a tunnel's port
    BOOST_TEST(request(p, "/varz", auth, http::verb::get, "bus.example").status ==
               200); // --allow-host
    BOOST_TEST(request(p, "/varz", auth, http::verb::get, "[::1]:80").status == 200);
    BOOST_TEST(request(p, "/", auth, http::verb::post).status == 405);
    BOOST_TEST(request(p, "/", auth, http::verb::delete_).status == 405);
    const auto head = request(p, "/metrics", auth, http::verb::head);
    BOOST_TEST(head.status == 200);
    BOOST_TEST(head.body.empty());

    // Lies and garbage: each gets its error, and the view goes on.
    {
        raw_client c(p);
        c.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(20000, 'a') +
               "\r\n\r\n");
        BOOST_TEST(c.read_until("\r\n\r\n", 5s).first.starts_with("HTTP/1.1 431"));
    }
    {
        raw_client c(p);
        c.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello");
        BOOST_TEST(c.read_until("\r\n\r\n", 5s).first.starts_with("HTTP/1.1 413"));
    }
    {
        raw_client c(p);
        c.send("\x16\x03\x01 not http at all\r\n\r\n");
        BOOST_TEST(c.read_until("\r\n\r\n", 5s).first.starts_with("HTTP/1.1 400"));
    }
    {
        // Slow loris: half a request, then nothing; closed at the request timeout.
        raw_client c(p);
        c.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        const auto [got, closed] = c.read_until("never", 5s);
        BOOST_TEST(closed);
    }
    {
        // A flood of idle connections: past the cap, 503 at once; the cap holds
        // only while they stay.
        std::vector<std::unique_ptr<raw_client>> idle;
        for (int i = 0; i < 8; ++i)
            idle.push_back(std::make_unique<raw_client>(p));
        BOOST_TEST(test::eventually([&] {
            raw_client extra(p);
            return extra.read_until("\r\n\r\n", 2s).first.starts_with("HTTP/1.1 503");
        }));
    }
    BOOST_TEST(test::eventually([&] { return request(p, "/varz", auth).status == 200; }));
}

BOOST_AUTO_TEST_CASE(a_browser_that_never_reads_costs_the_bus_nothing)
{
    web_host web({"--write-timeout", "3000"});
    connection bus;
    bus.connect(web.h->socket());
    slot_options patient;
    patient.read_timeout = 10000; // so a failed writer cannot leave the reading thread waiting
    auto reader = server_slot::create(bus, "load/in", patient);
    // A tail whose browser takes almost nothing: a tiny receive buffer, never read.
    raw_client stuck(web.port, 4096);
    stuck.send("GET /events?pattern=load/** HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    BOOST_REQUIRE(test::eventually(
        [&] { return get_json(web.port, "/subsz").at("count").to_number<int>() >= 1; }));
    // And one that reads, slower than records come (4 KiB each 10 ms), to
    // see what was dropped for it.
    raw_client slow(web.port, 4096);
    slow.send("GET /events?pattern=load/** HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    BOOST_REQUIRE(slow.read_until("retry:", 5s).first.find("200 OK") != std::string::npos);
    std::atomic<bool> told{false};
    std::jthread slow_reader([&] {
        const auto until = std::chrono::steady_clock::now() + 60s;
        std::string tail;
        char buffer[4096];
        while (!told && std::chrono::steady_clock::now() < until) {
            boost::system::error_code ec;
            const auto n = slow.socket.read_some(asio::buffer(buffer), ec);
            if (ec)
                return;
            tail = tail.substr(tail.size() > 64 ? tail.size() - 64 : 0) + std::string(buffer, n);
            told = tail.find("event: missed") != std::string::npos;
            std::this_thread::sleep_for(10ms);
        }
    });

    connection w;
    w.connect(web.h->socket());
    auto writer = client_slot::open(w, "load/in");
    constexpr int records = 8000; // 16 MB: past the tail inbox's 4 MiB and its feeds' 1000 events
    const std::string record(2000, 'r');
    std::size_t read = 0; // nothing lost for the reader, which keeps up
    std::jthread reading([&] {
        std::error_code ec;
        for (int i = 0; i < records && !ec; ++i)
            read += reader.read(ec).size() == record.size();
    });
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < records; ++i) {
        BOOST_TEST_INFO("write " << i);
        // The reader always; the tail's inbox while it has room (then it drops what comes).
        BOOST_REQUIRE_GE(writer.write(asio::buffer(record)), 1u);
    }
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST_MESSAGE(
        records << " writes with two stalled tails took "
                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    reading.join();
    BOOST_TEST(read == std::size_t(records));

    // The slow one is told what it missed, here (its own feed) or by the bus
    // (the inbox drops what comes when full: that is told with the next
    // record it takes, so a few more come).
    for (int i = 0; i < 100 && !told; ++i) {
        writer.write(asio::buffer(record));
        reader.read();
        std::this_thread::sleep_for(100ms);
    }
    slow_reader.join();
    BOOST_TEST(told);
    // The one that never reads is let go once the kernel's buffers are full
    // and it has taken nothing for the write timeout; the view goes on.
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    bool let_go = false;
    while (!let_go && std::chrono::steady_clock::now() < give_up) {
        for (int i = 0; i < 500; ++i)
            writer.write(asio::buffer(record));
        for (int i = 0; i < 500; ++i)
            reader.read();
        let_go = stuck.hung_up();
    }
    BOOST_TEST(let_go);
    BOOST_TEST(request(web.port, "/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(tails_that_come_and_go_leave_no_subscription_behind)
{
    web_host web;
    const auto tail = [&](const std::string& pattern) {
        auto c = std::make_unique<raw_client>(web.port);
        c->send("GET /events?pattern=" + pattern + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        BOOST_REQUIRE(c->read_until("retry:", 5s).first.find("200 OK") != std::string::npos);
        return c;
    };
    auto kept = tail("kept/**");
    // Reloads and filter changes: each tail closes as the next opens.
    for (int i = 0; i < 20; ++i)
        (void)tail("gone" + std::to_string(i) + "/**");
    BOOST_TEST(test::eventually([&] {
        const auto subs = get_json(web.port, "/subsz");
        return subs.at("count").to_number<int>() == 1 &&
               subs.at("subscriptions").at(0).at("pattern") == R"(kept\**)";
    }));
    // A page elsewhere cannot open one (nor use up the view's tails).
    BOOST_TEST(request(web.port, "/events", {{"Sec-Fetch-Site", "cross-site"}}).status == 403);
    BOOST_TEST(request(web.port, "/events", {}, http::verb::head).status == 405);
    BOOST_TEST(request(web.port, "/events?pattern=a/***").status == 400);
}
