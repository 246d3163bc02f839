// The web view's HTTP side (Boost.Beast): the page, its JSON, /metrics and
// the live tail as Server-Sent Events, behind the checks a local admin
// port needs (the Host header, an optional token, bounded everything).
#pragma once

#include "live_tail.hpp"
#include "monitor.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace slotbus::web {

struct http_options {
    boost::asio::ip::tcp::endpoint listen{boost::asio::ip::make_address("127.0.0.1"), 8233};
    /// Asked of every request but /healthz (Bearer, cookie, or ?token= once); empty: none.
    std::string token;
    /// Host header names accepted besides localhost, 127.0.0.1 and [::1]
    /// (any port: an SSH tunnel may use another one).
    std::vector<std::string> allowed_hosts;
    std::size_t max_connections = 64;
    std::chrono::milliseconds request_timeout{10000}; ///< to send a whole request
    std::chrono::milliseconds idle_timeout{30000};    ///< between keep-alive requests
    std::chrono::milliseconds write_timeout{30000};   ///< a response or event the client must take
    std::chrono::milliseconds heartbeat{15000};       ///< a comment on an idle event stream
    std::size_t max_slot_series = 1000;               ///< in /metrics
};

/// One file of the page, served from memory (see page/ and embed.cmake).
struct asset {
    std::string_view path, content_type, body;
};
/// Every file of the page, made at build time from plugins/web/page/.
const std::vector<asset>& page_assets();

using request = boost::beast::http::request<boost::beast::http::empty_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

/// Lives on one executor (the bus connection's).
class http_server {
public:
    http_server(boost::asio::any_io_executor executor, http_options options, monitor& host,
                live_tail& tail);
    ~http_server();

    /// Binds and listens; ec as bind gives it (address in use, say).
    void start(std::error_code& ec);
    /// Stops accepting and closes every connection.
    void stop();
    [[nodiscard]] std::uint16_t port() const;

    /// The answer to a request that is not the event stream (exposed for tests).
    [[nodiscard]] response answer(const request& r) const;
    /// Why a request is refused before anything is looked up (Host, token,
    /// method), as the response to send; nothing when it may go on.
    [[nodiscard]] std::optional<response> refusal(const request& r) const;

private:
    class connection;
    friend class connection;
    void accept();
    /// Text made from one look at the host, kept until the next look.
    struct cached_text {
        std::uint64_t generation = ~std::uint64_t{0};
        std::string text;
    };
    std::string cached(cached_text& c, const std::function<std::string()>& make) const;
    [[nodiscard]] std::string view_of(const snapshot& last) const;

    boost::asio::any_io_executor executor_;
    http_options options_;
    monitor& host_;
    live_tail& tail_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_; // accepting again after a failure
    mutable struct {
        cached_text view, metrics;
    } cache_;
    std::list<std::weak_ptr<connection>> connections_;
    bool stopped_ = false;
};

} // namespace slotbus::web
