#include "http_server.hpp"

#include "prometheus.hpp"

#include "slotbus/error.hpp"
#include "slotbus/event_data.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <tuple>

namespace slotbus::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;

namespace {

/// What every answer carries: no caching, no sniffing, no framing, nothing
/// from elsewhere, and no Access-Control-Allow-Origin (no other origin reads it).
void harden(http::response_header<>& h)
{
    h.set(http::field::server, "slotbus-web");
    h.set(http::field::cache_control, "no-store");
    h.set("X-Content-Type-Options", "nosniff");
    h.set("X-Frame-Options", "DENY");
    h.set("Referrer-Policy", "no-referrer");
    h.set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                     "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
}

response make(const request& r, http::status status, std::string_view type, std::string body)
{
    response out{status, r.version()};
    harden(out.base());
    out.set(http::field::content_type, type);
    out.keep_alive(r.keep_alive());
    out.body() = std::move(body);
    out.prepare_payload();
    if (r.method() == http::verb::head)
        out.body().clear(); // Content-Length stays: what a GET would have had
    return out;
}

response json_answer(const request& r, const json::value& v, http::status status = http::status::ok)
{
    return make(r, status, "application/json", slotbus::json_text(v));
}

response text_answer(const request& r, http::status status, std::string_view text)
{
    return make(r, status, "text/plain; charset=utf-8", std::string(text) + "\n");
}

/// The Host header's name, lower-cased, without its port.
std::string host_name_of(std::string_view host)
{
    std::string name;
    if (host.starts_with('[')) { // [::1]:8233
        const auto end = host.find(']');
        name = std::string(host.substr(0, end == std::string_view::npos ? host.size() : end + 1));
    } else {
        name = std::string(host.substr(0, host.find(':')));
    }
    for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
}

/// Compares in time that does not depend on where they differ.
bool same_secret(std::string_view a, std::string_view b)
{
    unsigned char diff = a.size() != b.size();
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

std::string_view cookie(std::string_view header, std::string_view name)
{
    while (!header.empty()) {
        const auto end = header.find(';');
        auto part = header.substr(0, end);
        while (part.starts_with(' '))
            part.remove_prefix(1);
        if (part.starts_with(name) && part.size() > name.size() && part[name.size()] == '=')
            return part.substr(name.size() + 1);
        header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    }
    return {};
}

constexpr std::string_view token_cookie = "slotbus_web_token";

std::string param(const urls::url_view& u, std::string_view key)
{
    const auto it = u.params().find(key);
    return it == u.params().end() ? std::string() : std::string((*it).value);
}

} // namespace

// ---- one client connection ----------------------------------------------------------------------

class http_server::connection : public std::enable_shared_from_this<connection> {
public:
    connection(http_server& server, tcp::socket socket)
        : server_(server), stream_(std::move(socket)), beat_(stream_.get_executor())
    {
    }

    void start() { read(); }

    void close()
    {
        closed_ = true;
        beat_.cancel();
        feed_.reset();
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    void read()
    {
        parser_.emplace();
        parser_->header_limit(8 * 1024);
        parser_->body_limit(0); // GET and HEAD only: no request has a body
        stream_.expires_after(first_ ? server_.options_.request_timeout
                                     : server_.options_.idle_timeout);
        first_ = false;
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec)
    {
        if (closed_)
            return;
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::eof)
            return close();
        if (ec) { // a request that is none: say so, then close
            const request& partial = parser_->get();
            auto status = ec == http::error::header_limit
                              ? http::status::request_header_fields_too_large
                          : ec == http::error::body_limit ? http::status::payload_too_large
                                                          : http::status::bad_request;
            auto out = text_answer(partial, status, "bad request: " + ec.message());
            out.keep_alive(false);
            return write(std::move(out));
        }
        const request& r = parser_->get();
        if (auto refused = server_.refusal(r))
            return write(std::move(*refused));
        const auto target = urls::parse_origin_form(r.target());
        if (target && target->path() == "/events") {
            if (r.method() != http::verb::get) { // a stream has no HEAD
                auto out = text_answer(r, http::status::method_not_allowed, "GET only");
                out.set(http::field::allow, "GET");
                return write(std::move(out));
            }
            return start_events(r, *target);
        }
        write(server_.answer(r));
    }

    void write(response out)
    {
        auto shared = std::make_shared<response>(std::move(out));
        stream_.expires_after(server_.options_.write_timeout);
        http::async_write(stream_, *shared,
                          [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
                              if (ec || self->closed_ || !shared->keep_alive())
                                  return self->close();
                              self->read();
                          });
    }

    // ---- Server-Sent Events: the live tail ----

    void start_events(const request& r, const urls::url_view& target)
    {
        std::error_code ec;
        auto filter = tail_filter::make(param(target, "pattern"), param(target, "type"),
                                        param(target, "source"), ec);
        if (ec) {
            auto out = text_answer(r, http::status::bad_request, "bad filter: " + ec.message());
            return write(std::move(out));
        }
        feed_ = server_.tail_.open(std::move(filter), ec);
        if (!feed_) {
            auto out = text_answer(r, http::status::service_unavailable,
                                   ec == error::too_many_open_files
                                       ? "too many live tails are open; close one"
                                       : "the live tail is not ready");
            out.set(http::field::retry_after, "5");
            return write(std::move(out));
        }
        http::response<http::empty_body> head{http::status::ok, r.version()};
        harden(head.base());
        head.set(http::field::content_type, "text/event-stream");
        head.keep_alive(false); // the stream ends when either side closes it
        std::ostringstream header;
        header << head.base();
        out_ = header.str();
        out_ += "retry: 2000\n: the live tail; records come as \"record\" events\n\n";
        std::weak_ptr<connection> weak = shared_from_this();
        feed_->on_ready = [weak] {
            if (auto self = weak.lock())
                asio::post(self->stream_.get_executor(), [self] { self->pump(); });
        };
        // Closed with a reset, not a FIN queued behind what the browser never
        // took: the kernel lets go of that at once too.
        beast::error_code linger_ec;
        stream_.socket().set_option(asio::socket_base::linger(true, 0), linger_ec);
        watch_for_close();
        beat();
        pump();
    }

    /// A client sends nothing on an event stream: any byte or EOF ends it.
    void watch_for_close()
    {
        stream_.socket().async_read_some(
            asio::buffer(discard_),
            [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
    }

    void pump()
    {
        if (closed_ || writing_)
            return;
        if (out_.empty() && feed_ && feed_->ready())
            out_ = feed_->take();
        if (out_.empty())
            return;
        writing_ = true;
        idle_ = false;
        stream_.expires_after(server_.options_.write_timeout); // a browser that takes nothing goes
        asio::async_write(stream_, asio::buffer(out_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->writing_ = false;
                              if (ec || self->closed_)
                                  return self->close();
                              self->stream_.expires_never();
                              self->out_.clear();
                              self->pump();
                          });
    }

    void beat()
    {
        beat_.expires_after(server_.options_.heartbeat);
        beat_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->closed_)
                return;
            if (self->idle_ && !self->writing_ && self->out_.empty()) {
                self->out_ = ": keep-alive\n\n";
                self->pump();
            }
            self->idle_ = true;
            self->beat();
        });
    }

    http_server& server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_{16 * 1024};
    std::optional<http::request_parser<http::empty_body>> parser_;
    bool first_ = true, closed_ = false;
    std::shared_ptr<tail_feed> feed_;
    std::string out_;
    bool writing_ = false, idle_ = true;
    asio::steady_timer beat_;
    char discard_[64];
};

// ---- the server ---------------------------------------------------------------------------------

http_server::http_server(asio::any_io_executor executor, http_options options, monitor& host,
                         live_tail& tail)
    : executor_(executor), options_(std::move(options)), host_(host), tail_(tail),
      acceptor_(executor), retry_(executor)
{
}

http_server::~http_server()
{
    stop();
}

void http_server::start(std::error_code& ec)
{
    boost::system::error_code bec;
    acceptor_.open(options_.listen.protocol(), bec);
    if (!bec)
        acceptor_.set_option(tcp::acceptor::reuse_address(true), bec);
    if (!bec)
        acceptor_.bind(options_.listen, bec);
    if (!bec)
        acceptor_.listen(asio::socket_base::max_listen_connections, bec);
    ec = bec;
    if (!ec)
        accept();
}

std::uint16_t http_server::port() const
{
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
}

void http_server::stop()
{
    if (stopped_)
        return;
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    for (auto& weak : connections_)
        if (auto c = weak.lock())
            c->close();
    connections_.clear();
}

void http_server::accept()
{
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (stopped_ || ec == asio::error::operation_aborted)
            return;
        if (!ec) {
            connections_.remove_if([](const auto& w) { return w.expired(); });
            if (connections_.size() >= options_.max_connections) {
                // Said at once or not at all: a flood costs no buffer and no timer.
                static constexpr std::string_view busy =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: "
                    "close\r\nRetry-After: 5\r\n\r\n";
                socket.non_blocking(true, ec);
                socket.write_some(asio::buffer(busy), ec);
                socket.close(ec);
            } else {
                auto c = std::make_shared<connection>(*this, std::move(socket));
                connections_.push_back(c);
                c->start();
            }
        } else {
            // Out of descriptors, say: try again shortly rather than spin.
            retry_.expires_after(std::chrono::milliseconds(100));
            retry_.async_wait([this](boost::system::error_code wait_ec) {
                if (!wait_ec && !stopped_)
                    accept();
            });
            return;
        }
        accept();
    });
}

std::optional<response> http_server::refusal(const request& r) const
{
    if (r.method() != http::verb::get && r.method() != http::verb::head) {
        auto out = text_answer(r, http::status::method_not_allowed, "only GET and HEAD");
        out.set(http::field::allow, "GET, HEAD");
        return out;
    }
    // A page from elsewhere that resolves its own name to 127.0.0.1 (DNS
    // rebinding) sends its own name here: only ours are served.
    const auto host = r.find(http::field::host);
    if (host == r.end())
        return text_answer(r, http::status::bad_request, "a Host header is required");
    const auto name = host_name_of(host->value());
    const bool ours = name == "localhost" || name == "127.0.0.1" || name == "[::1]" ||
                      std::find(options_.allowed_hosts.begin(), options_.allowed_hosts.end(),
                                name) != options_.allowed_hosts.end();
    if (!ours)
        return text_answer(r, http::status::forbidden,
                           "Host " + std::string(host->value()) +
                               " is not this view's (see --allow-host)");
    // A page elsewhere may send requests here even when it cannot read the
    // answers (an EventSource, an image): a browser says where it came from.
    if (const auto site = r.find("Sec-Fetch-Site");
        site != r.end() && site->value() != "same-origin" && site->value() != "none")
        return text_answer(r, http::status::forbidden, "only this view's own pages may ask");
    if (const auto origin = r.find(http::field::origin); origin != r.end()) {
        const auto value = origin->value();
        const auto at = value.find("://");
        if (at == std::string_view::npos || host_name_of(value.substr(at + 3)) != name ||
            value.substr(at + 3) != host->value())
            return text_answer(r, http::status::forbidden, "only this view's own pages may ask");
    }
    const auto target = urls::parse_origin_form(r.target());
    if (!target)
        return text_answer(r, http::status::bad_request, "not a request target");
    if (options_.token.empty() || target->path() == "/healthz")
        return std::nullopt;
    std::string_view given;
    if (const auto auth = r.find(http::field::authorization);
        auth != r.end() && auth->value().starts_with("Bearer "))
        given = auth->value().substr(7);
    else if (const auto c = r.find(http::field::cookie); c != r.end())
        given = cookie(c->value(), token_cookie);
    if (!given.empty() && same_secret(given, options_.token))
        return std::nullopt;
    // ?token=T once: it becomes a cookie this origin alone sends, and the
    // address bar (and history) lose it.
    if (const auto t = param(*target, "token"); !t.empty() && same_secret(t, options_.token)) {
        auto out = text_answer(r, http::status::see_other, "signed in");
        // The path as it came, if it is a plain one; else the page.
        const std::string_view path = target->encoded_path();
        const bool plain =
            path.starts_with('/') && !path.starts_with("//") &&
            std::all_of(path.begin(), path.end(), [](char c) { return c > 0x20 && c < 0x7f; });
        out.set(http::field::location, plain ? std::string(path) : std::string("/"));
        out.set(http::field::set_cookie, std::string(token_cookie) + "=" + options_.token +
                                             "; Path=/; HttpOnly; SameSite=Strict");
        return out;
    }
    auto out = text_answer(r, http::status::unauthorized,
                           "a token is required: open /?token=... once, or send "
                           "Authorization: Bearer ...");
    out.set(http::field::www_authenticate, "Bearer realm=\"slotbus\"");
    return out;
}

std::string http_server::cached(cached_text& c, const std::function<std::string()>& make) const
{
    // Made once per look at the host, however many ask.
    if (c.generation != host_.generation()) {
        c.text = make();
        c.generation = host_.generation();
    }
    return c.text;
}

std::string http_server::view_of(const snapshot& last) const
{
    json::array history;
    for (const auto& p : host_.history())
        history.push_back(json::object{{"at_ms", p.at_ms},
                                       {"writes", p.writes},
                                       {"deliveries", p.deliveries},
                                       {"bytes_in", p.bytes_in},
                                       {"bytes_out", p.bytes_out},
                                       {"dropped", p.dropped}});
    json::object connections{
        {"open", last.connections.contains("open") ? last.connections.at("open") : json::value(0)}};
    if (const auto* closed = last.connections.if_contains("closed"); closed && closed->is_array()) {
        const auto& all = closed->get_array();
        connections["closed"] =
            json::array(all.begin() + static_cast<std::ptrdiff_t>(
                                          all.size() - std::min<std::size_t>(all.size(), 10)),
                        all.end());
    }
    // What a page can draw every second: the first view_slots slots of the
    // tree, each with its first few subscriptions (and how many in all).
    constexpr std::size_t view_slots = 2000, view_patterns = 8;
    json::array slots;
    for (std::size_t i = 0; i < std::min(view_slots, last.slots.size()); ++i) {
        auto s = last.slots[i].as_object();
        std::size_t total = 0;
        if (auto* p = s.if_contains("subscriptions"); p && p->is_array()) {
            auto& all = p->as_array();
            total = all.size();
            if (all.size() > view_patterns)
                all.resize(view_patterns);
        } // before the insert below, which may move the object's values
        s["subscriptions_total"] = total;
        slots.push_back(std::move(s));
    }
    return slotbus::json_text(
        json::object{{"fresh", host_.fresh()},
                     {"problem", host_.problem()},
                     {"stats", last.stats},
                     {"history", std::move(history)},
                     {"slots", std::move(slots)},
                     {"slots_cut", last.slots_cut || last.slots.size() > view_slots},
                     {"plugins", last.plugins},
                     {"hosts", last.hosts},
                     {"connections", std::move(connections)},
                     {"live_tails", tail_.feeds()}});
}

response http_server::answer(const request& r) const
{
    const auto target = urls::parse_origin_form(r.target());
    if (!target)
        return text_answer(r, http::status::bad_request, "not a request target");
    const std::string path = target->path();
    const auto& last = host_.last();
    for (const auto& a : page_assets())
        if (a.path == path || (path == "/" && a.path == "/index.html"))
            return make(r, http::status::ok, a.content_type, std::string(a.body));
    if (path == "/healthz") {
        if (host_.fresh())
            return json_answer(r, json::object{{"status", "ok"}});
        const auto why =
            host_.problem().empty() ? "no current figures from the host" : host_.problem();
        return json_answer(r, json::object{{"status", "unavailable"}, {"reason", why}},
                           http::status::service_unavailable);
    }
    if (path == "/metrics") {
        if (host_.generation() == 0 ||
            last.stats.empty()) // no figures: no zeros that look like a reset
            return text_answer(r, http::status::service_unavailable,
                               "no figures from the host yet");
        return make(r, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                    cached(cache_.metrics, [&] {
                        return render_metrics(last, host_.fresh(), options_.max_slot_series);
                    }));
    }
    if (path == "/varz") {
        json::object o = last.stats;
        if (const auto* h = last.hosts.if_contains("host"))
            o["host"] = *h;
        o["http_port"] = port();
        o["live_tails"] = tail_.feeds();
        return json_answer(r, o);
    }
    if (path == "/connz") {
        // As NATS's: state=open (the default), closed, or all.
        const auto state = param(*target, "state");
        if (!state.empty() && state != "open" && state != "closed" && state != "all")
            return text_answer(r, http::status::bad_request, "state is open, closed or all");
        json::object o;
        const auto* open = last.connections.if_contains("connections");
        const auto* closed = last.connections.if_contains("closed");
        o["open"] = last.connections.contains("open") ? last.connections.at("open") : 0;
        if (state != "closed")
            o["connections"] = open ? *open : json::array();
        if (state == "closed" || state == "all")
            o["closed"] = closed ? *closed : json::array();
        return json_answer(r, o);
    }
    // Listings come a page at a time, as NATS's do: ?offset=N&limit=M (1024
    // unless asked, 10 000 at most), with the total.
    std::size_t offset = 0, limit = 1024;
    for (auto [key, out, most] :
         {std::tuple{"offset", &offset, SIZE_MAX}, std::tuple{"limit", &limit, std::size_t{10000}}})
        if (const auto text = param(*target, key); !text.empty()) {
            std::size_t n = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc() || end != text.data() + text.size())
                return text_answer(r, http::status::bad_request, std::string(key) + " is a number");
            *out = std::min(n, most);
        }
    const auto page = [&](const json::array& all) {
        const auto from = std::min(offset, all.size());
        const auto to = std::min(all.size(), from + limit);
        return json::array(all.begin() + static_cast<std::ptrdiff_t>(from),
                           all.begin() + static_cast<std::ptrdiff_t>(to));
    };
    if (path == "/slotz")
        return json_answer(r, json::object{{"total", last.slots.size()},
                                           {"offset", offset},
                                           {"slots", page(last.slots)},
                                           {"cut", last.slots_cut}});
    if (path == "/subsz") {
        json::array subs;
        for (const auto& v : last.slots) {
            const auto& s = v.as_object();
            if (const auto* p = s.if_contains("subscriptions"); p && p->is_array())
                for (const auto& pattern : p->get_array())
                    subs.push_back(json::object{{"slot", s.at("name")}, {"pattern", pattern}});
        }
        return json_answer(r, json::object{{"count", subs.size()},
                                           {"offset", offset},
                                           {"subscriptions", page(subs)}});
    }
    if (path == "/pluginz")
        return json_answer(r, last.plugins);
    if (path == "/hostz")
        return json_answer(r, last.hosts);
    if (path == "/api/view")
        return make(r, http::status::ok, "application/json",
                    cached(cache_.view, [&] { return view_of(last); }));
    return text_answer(r, http::status::not_found, "no such page: " + path);
}

} // namespace slotbus::web
