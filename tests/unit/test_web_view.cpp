// The web view's parts that need no host: what it refuses before looking
// anything up, the Prometheus text it renders, the tail's filters and feeds.
#define BOOST_TEST_MODULE web_view
#include "http_server.hpp"
#include "prometheus.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

using namespace slotbus;
using namespace slotbus::web;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

/// A server that is never started: refusal() and answer() need no socket.
struct view {
    explicit view(std::string token = {}, std::vector<std::string> allowed = {})
        : host(bus, {}), tail(bus, {}),
          server(bus.get_executor(), options(token, allowed), host, tail)
    {
    }
    static http_options options(std::string token, std::vector<std::string> allowed)
    {
        http_options o;
        o.token = std::move(token);
        o.allowed_hosts = std::move(allowed);
        return o;
    }
    connection bus; // never connected
    monitor host;
    live_tail tail;
    http_server server;
};

request get(std::string target, std::string host = "127.0.0.1:8233",
            http::verb verb = http::verb::get)
{
    request r{verb, target, 11};
    if (!host.empty())
        r.set(http::field::host, host);
    return r;
}

int status_of(const view& v, const request& r)
{
    const auto refused = v.server.refusal(r);
    return static_cast<int>(refused ? refused->result_int() : v.server.answer(r).result_int());
}

} // namespace

BOOST_AUTO_TEST_CASE(only_loopback_names_and_allowed_hosts_are_served)
{
    view v({}, {"bus.example"});
    for (const char* ok :
         {"127.0.0.1:8233", "localhost", "LOCALHOST:9000", "[::1]:80", "[::1]", "bus.example:443"})
        BOOST_TEST(!v.server.refusal(get("/healthz", ok)), ok);
    for (const char* bad : {"localhost.evil.example", "127.0.0.1.nip.io:8233", "evil.example",
                            "[::1].evil", "bus.example.evil", "0.0.0.0:8233", ""})
        BOOST_TEST(status_of(v, get("/healthz", bad)) >= 400, bad);
    BOOST_TEST(status_of(v, get("/healthz", "")) == 400); // no Host at all
    BOOST_TEST(status_of(v, get("/", "127.0.0.1", http::verb::post)) == 405);
    BOOST_TEST(status_of(v, get("/", "127.0.0.1", http::verb::options)) == 405);
}

BOOST_AUTO_TEST_CASE(only_this_views_own_pages_may_ask)
{
    view v;
    const auto with = [&](const char* field, const char* value) {
        auto r = get("/events", "127.0.0.1:8233");
        r.set(field, value);
        return status_of(v, r);
    };
    // A page elsewhere (fetch metadata, or its Origin) is refused before anything opens.
    BOOST_TEST(with("Sec-Fetch-Site", "cross-site") == 403);
    BOOST_TEST(with("Sec-Fetch-Site", "same-site") == 403); // another port of localhost
    BOOST_TEST(with("Origin", "http://evil.example") == 403);
    BOOST_TEST(with("Origin", "http://127.0.0.1:9999") == 403);
    BOOST_TEST(with("Origin", "null") == 403);
    BOOST_TEST(!v.server.refusal([&] {
        auto r = get("/varz", "127.0.0.1:8233");
        r.set("Sec-Fetch-Site", "same-origin");
        r.set(http::field::origin, "http://127.0.0.1:8233");
        return r;
    }()));
    BOOST_TEST(!v.server.refusal([&] {
        auto r = get("/", "localhost:8233");
        r.set("Sec-Fetch-Site", "none"); // typed in the address bar
        return r;
    }()));
}

BOOST_AUTO_TEST_CASE(a_token_guards_everything_but_healthz)
{
    view v("0123456789abcdef-token");
    BOOST_TEST(status_of(v, get("/varz")) == 401);
    BOOST_TEST(status_of(v, get("/healthz")) == 503); // answered: nothing looked at yet
    auto bearer = get("/varz");
    bearer.set(http::field::authorization, "Bearer 0123456789abcdef-token");
    BOOST_TEST(!v.server.refusal(bearer));
    auto shorter = get("/varz");
    shorter.set(http::field::authorization, "Bearer 0123456789abcdef-toke");
    BOOST_TEST(status_of(v, shorter) == 401);
    auto cookie = get("/varz");
    cookie.set(http::field::cookie, "a=b; slotbus_web_token=0123456789abcdef-token; c=d");
    BOOST_TEST(!v.server.refusal(cookie));
    const auto signin = v.server.refusal(get("/slotz?token=0123456789abcdef-token"));
    BOOST_REQUIRE(signin);
    BOOST_TEST(signin->result_int() == 303u);
    BOOST_TEST(std::string((*signin)[http::field::location]) == "/slotz");
    // The redirect names a plain path of ours, never another site or a header.
    const auto elsewhere = v.server.refusal(get("//evil.example/?token=0123456789abcdef-token"));
    BOOST_REQUIRE(elsewhere);
    BOOST_TEST(std::string((*elsewhere)[http::field::location]) == "/");
    const auto crlf =
        v.server.refusal(get("/a%0d%0aSet-Cookie:%20x=y?token=0123456789abcdef-token"));
    BOOST_REQUIRE(crlf);
    BOOST_TEST(std::string((*crlf)[http::field::location]) ==
               "/a%0d%0aSet-Cookie:%20x=y"); // still encoded
    // A wrong ?token= is a 401, not a cookie.
    const auto wrong = v.server.refusal(get("/?token=nope"));
    BOOST_REQUIRE(wrong);
    BOOST_TEST(wrong->result_int() == 401u);
    BOOST_TEST((*wrong)[http::field::set_cookie].empty());
}

BOOST_AUTO_TEST_CASE(answers_are_hardened_and_unknown_paths_are_404)
{
    view v;
    const auto page = v.server.answer(get("/"));
    BOOST_TEST(page.result_int() == 200u);
    BOOST_TEST(std::string(page[http::field::content_type]).starts_with("text/html"));
    BOOST_TEST((page.find("Access-Control-Allow-Origin") == page.end()));
    BOOST_TEST(std::string(page["X-Content-Type-Options"]) == "nosniff");
    BOOST_TEST(v.server.answer(get("/app.js")).result_int() == 200u);
    BOOST_TEST(v.server.answer(get("/../etc/passwd")).result_int() == 404u);
    BOOST_TEST(v.server.answer(get("/nothing")).result_int() == 404u);
    const auto head = v.server.answer(get("/", "127.0.0.1", http::verb::head));
    BOOST_TEST(head.body().empty());
    BOOST_TEST(std::string(head[http::field::content_length]) ==
               std::to_string(page.body().size()));
    BOOST_TEST(v.server.answer(get("/connz?state=nope")).result_int() == 400u);
    BOOST_TEST(v.server.answer(get("/slotz?limit=ten")).result_int() == 400u);
    // Before the first look at the host there are no figures: not zeros.
    BOOST_TEST(v.server.answer(get("/metrics")).result_int() == 503u);
}

BOOST_AUTO_TEST_CASE(metrics_render_every_family_once_with_labels_escaped)
{
    snapshot s;
    s.stats = json::parse(R"({"connections": 3, "writes": 12, "rss_bytes": 1048576, "cpu_ms": 1500,
                             "slot_count": 2, "denied": {"uid 1001": {"write": 2}}})")
                  .as_object();
    s.slots = json::parse(R"([{"name": "\\\\.\\mailslot\\a\"b", "records_in": 5, "depth": 1},
                              {"name": "line\nbreak", "records_in": 1}])")
                  .as_array();
    s.plugins = json::parse(R"({"plugins": [{"name": "web", "state": "running", "restarts": 2}]})")
                    .as_object();
    s.hosts = json::parse(R"({"peers": [{"host": "beta", "state": "up", "records_out": 9}],
                             "broadcast": {"domain": "lab", "hosts": [{}, {}]}})")
                  .as_object();
    const auto text = render_metrics(s, true, 1);
    const auto has = [&](const std::string& line) {
        return text.find("\n" + line + "\n") != std::string::npos;
    };
    BOOST_TEST(has("slotbus_writes_total 12"));
    BOOST_TEST(has("slotbus_cpu_seconds_total 1.5"));
    BOOST_TEST(has(R"(slotbus_denied_total{identity="uid 1001",right="write"} 2)"));
    BOOST_TEST(has(R"(slotbus_plugin_restarts_total{plugin="web"} 2)"));
    BOOST_TEST(has(R"(slotbus_link_up{peer="beta"} 1)"));
    BOOST_TEST(has(R"(slotbus_link_records_out_total{peer="beta"} 9)"));
    BOOST_TEST(has(R"(slotbus_discovered_hosts{domain="lab"} 2)"));
    BOOST_TEST(has(R"(slotbus_slot_records_in_total{slot="\\\\.\\mailslot\\a\"b"} 5)"));
    BOOST_TEST(text.find("line\nbreak") == std::string::npos); // one series (max 1), and escaped
    BOOST_TEST(has("slotbus_slot_series_cut 1"));
    // Every family's TYPE once.
    for (const char* family : {"slotbus_writes_total", "slotbus_slot_depth", "slotbus_up"}) {
        const auto line = std::string("# TYPE ") + family + " ";
        const auto first = text.find(line);
        if (std::string_view(family) == "slotbus_slot_depth") {
            BOOST_TEST(first == std::string::npos); // no such family: named queued_records
            continue;
        }
        BOOST_TEST(first != std::string::npos);
        BOOST_TEST(text.find(line, first + 1) == std::string::npos);
    }
    BOOST_TEST(escape_label("a\\b\"c\nd") == R"(a\\b\"c\nd)");
}

BOOST_AUTO_TEST_CASE(tail_filters_and_a_feed_that_drops_its_oldest)
{
    std::error_code ec;
    const auto f = tail_filter::make("orders/**", "orders.*", "/plugins/shop", ec);
    BOOST_REQUIRE(!ec);
    BOOST_TEST(f.wants("orders\\eu", "orders.created", "/plugins/shop"));
    BOOST_TEST(!f.wants("orders\\eu", "billing.created", "/plugins/shop"));
    BOOST_TEST(!f.wants("orders\\eu", "orders.created", "/plugins/shop2"));
    BOOST_TEST(!f.wants("billing\\eu", "orders.created", "/plugins/shop"));
    (void)tail_filter::make("orders/***", "", "", ec);
    BOOST_TEST(ec == error::invalid_name);
    (void)tail_filter::make("", std::string(300, 't'), "", ec);
    BOOST_TEST(ec == error::invalid_parameter);

    tail_feed feed(tail_filter{}, 3);
    int woken = 0;
    feed.on_ready = [&] { ++woken; };
    for (int i = 0; i < 5; ++i)
        feed.push(R"({"i":)" + std::to_string(i) + "}");
    feed.bus_dropped(7);
    BOOST_TEST(woken == 1); // once, when it became ready
    const auto text = feed.take();
    BOOST_TEST(text.starts_with("event: missed\ndata: {\"here\":2,\"bus\":7}\n\n"));
    BOOST_TEST(text.find(R"({"i":1})") == std::string::npos); // the oldest went
    BOOST_TEST(text.find("event: record\ndata: {\"i\":4}\n\n") != std::string::npos);
    BOOST_TEST(!feed.ready());
    feed.push("{}");
    BOOST_TEST(feed.take() == "event: record\ndata: {}\n\n"); // no missed event: nothing new missed
}
