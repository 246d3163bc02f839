#include "listener.hpp"

#include "socket_owner.hpp"
#include "tuning.hpp"

#include "slotbus/detail/tls.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <stdexcept>

#include "host/session.hpp"
#include "transport/tls/host_key.hpp"
#include "transport/tls/peers.hpp"

namespace slotbus::bus {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

bool on_loopback(const asio::ip::address& a)
{
    return a.is_loopback() ||
           (a.is_v6() && a.to_v6().is_v4_mapped() &&
            asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback());
}

} // namespace

struct network_listener::handshake {
    handshake(tcp::socket s, std::shared_ptr<ssl::context> c, asio::ip::address source)
        : context(std::move(c)), stream(std::move(s), *context), deadline(stream.get_executor()),
          from(source)
    {
    }
    std::shared_ptr<ssl::context> context; // outlives the stream
    detail::byte_stream::tls_stream stream;
    asio::steady_timer deadline;
    asio::ip::address from;
    std::uint64_t id = 0;
};

network_listener::network_listener(asio::io_context& io, network_listener_options options)
    : options_(std::move(options)), acceptor_(io), pause_(io)
{
}

network_listener::~network_listener() = default;

bool network_listener::open(std::string& why)
{
    const std::string_view address = options_.address;
    std::string host, port;
    scheme_ = address.substr(0, 3);
    if ((scheme_ != "tcp" && scheme_ != "tls") || address.substr(3, 1) != ":" ||
        !split_address(address.substr(4), host, port) || std::stoul(port) > 65535) {
        why = "--listen " + options_.address + ": not tcp:IP:PORT or tls:IP:PORT";
        return false;
    }
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(host, ec);
    if (!ec && ip.is_v6() && ip.to_v6().is_v4_mapped()) {
        why = "--listen " + options_.address + ": write an IPv4 address as such, not as ::ffff:…";
        return false;
    }
    if (ec) {
        why = "--listen " + options_.address + ": \"" + host +
              "\" is not an IP address (listen on an address, not a name)";
        return false;
    }
    if (scheme_ == "tcp" && !on_loopback(ip)) {
        why = "--listen " + options_.address +
              ": plain TCP is for loopback only (a client's uid is known there, and nothing "
              "leaves the machine); listen with tls: on other addresses";
        return false;
    }
    if (scheme_ == "tls") {
        if (options_.clients_file.empty()) {
            why = "--listen " + options_.address + " needs --clients FILE (who may connect)";
            return false;
        }
        if (!reload_clients(why))
            return false;
        const auto cert = options_.key_dir / "host.pem";
        if (fingerprint_of_certificate(cert, why).empty()) {
            why += " (make one with `slotbus keygen --dir " + options_.key_dir.string() + "`)";
            return false;
        }
        try {
            context_ = std::make_shared<ssl::context>(detail::make_pinned_context(
                cert, options_.key_dir / "host.key",
                [clients = clients_](const std::string& fp) { return clients->contains(fp); }));
        } catch (const std::exception& e) {
            why = e.what();
            return false;
        }
    }
    const tcp::endpoint endpoint(ip, static_cast<unsigned short>(std::stoul(port)));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec)
        acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && ip.is_v6())
        acceptor_.set_option(asio::ip::v6_only(true), ec);
    if (!ec)
        acceptor_.bind(endpoint, ec);
    if (!ec)
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        why = "--listen " + options_.address + ": " + ec.message();
        return false;
    }
    return true;
}

bool network_listener::reload_clients(std::string& why)
{
    auto loaded = load_clients(options_.clients_file, why);
    if (!loaded) {
        why = options_.clients_file.string() + ": " + why;
        return false;
    }
    *clients_ = std::move(*loaded);
    return true;
}

bool network_listener::knows_client(const std::string& key, const std::string& name) const
{
    const auto it = clients_->find(key);
    return it != clients_->end() && it->second == name;
}

std::string network_listener::where() const
{
    boost::system::error_code ec;
    const auto at = acceptor_.local_endpoint(ec);
    if (ec)
        return options_.address;
    const auto ip = at.address().to_string();
    return scheme_ + ":" + (at.address().is_v6() ? "[" + ip + "]" : ip) + ":" +
           std::to_string(at.port());
}

void network_listener::start(accept_handler on_accept)
{
    on_accept_ = std::move(on_accept);
    accept();
}

void network_listener::accept()
{
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
        if (ec == asio::error::operation_aborted || closed_)
            return;
        if (ec) {
            failures_("--listen ", options_.address, ": accept failed: ", ec.message(),
                      "; pausing accepts for 100 ms");
            pause_.expires_after(std::chrono::milliseconds(100));
            pause_.async_wait([this](const boost::system::error_code& wait_ec) {
                if (!wait_ec)
                    accept();
            });
            return;
        }
        tune_for_frames(s);
        if (context_)
            start_handshake(std::move(s));
        else
            admit_tcp(std::move(s));
        accept();
    });
}

void network_listener::admit_tcp(tcp::socket socket)
{
    boost::system::error_code from_ec, to_ec;
    const auto from = socket.remote_endpoint(from_ec);
    const auto to = socket.local_endpoint(to_ec);
    const auto uid = from_ec || to_ec || !on_loopback(from.address()) ? std::nullopt
                                                                      : socket_owner_uid(from, to);
    detail::byte_stream stream(std::move(socket));
    if (!uid) {
        failures_("--listen ", options_.address,
                  ": refusing a connection the kernel names no uid for");
        refuse_connection(stream, "the kernel names no local uid for this connection");
        return;
    }
    // The kernel's word is the uid alone: no pid, and no groups (group rules
    // are not about TCP clients).
    on_accept_(std::move(stream), peer_info{0, *uid, no_group_id, 0, {}, {}}, {});
}

void network_listener::start_handshake(tcp::socket socket)
{
    boost::system::error_code ec;
    const auto from = handshake_source(socket.remote_endpoint(ec).address());
    if (ec)
        return; // gone already
    auto& of_address = handshakes_of_[from];
    if (handshakes_.size() >= options_.max_handshakes ||
        of_address >= options_.max_handshakes_per_address) {
        failures_("--listen ", options_.address, ": too many TLS handshakes under way (from ",
                  from.to_string(), ", or in all): dropping a connection");
        if (of_address == 0)
            handshakes_of_.erase(from);
        return; // closed by the socket's destructor
    }
    ++of_address;
    auto h = std::make_shared<handshake>(std::move(socket), context_, from);
    h->id = next_handshake_++;
    handshakes_.emplace(h->id, h);
    h->deadline.expires_after(options_.handshake_timeout);
    h->deadline.async_wait([h](const boost::system::error_code& wait_ec) {
        if (!wait_ec) { // too slow: its handshake ends with an error
            boost::system::error_code ignored;
            h->stream.next_layer().close(ignored);
        }
    });
    h->stream.async_handshake(
        ssl::stream_base::server,
        [this, h](const boost::system::error_code& hs_ec) { end_handshake(h, hs_ec); });
}

void network_listener::end_handshake(const std::shared_ptr<handshake>& h,
                                     const boost::system::error_code& ec)
{
    h->deadline.cancel();
    handshakes_.erase(h->id);
    if (auto it = handshakes_of_.find(h->from); it != handshakes_of_.end() && --it->second == 0)
        handshakes_of_.erase(it);
    if (closed_)
        return;
    const auto fingerprint =
        ec ? std::string() : detail::peer_fingerprint(h->stream.native_handle());
    const auto client = clients_->find(fingerprint);
    if (ec || client == clients_->end()) {
        failures_("--listen ", options_.address, ": a TLS client from ", h->from.to_string(),
                  " refused: ", ec ? ec.message() : "its key is no client's");
        return;
    }
    peer_info who{0, nobody_id, nobody_id, 0, {}, client->second};
    on_accept_(detail::byte_stream(std::move(h->stream), context_), std::move(who), fingerprint);
}

void network_listener::close()
{
    if (std::exchange(closed_, true))
        return;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    pause_.cancel();
    for (auto& [id, h] : handshakes_) {
        h->deadline.cancel();
        h->stream.next_layer().close(ignored);
    }
}

} // namespace slotbus::bus
