#include "links.hpp"

#include "slotbus/detail/tls.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include <stdexcept>

#include "service/log.hpp"
#include "transport/tcp/tuning.hpp"
#include "transport/tls/host_key.hpp"

namespace slotbus::bus {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

struct links::stream {
    stream(asio::io_context& io, ssl::context& ctx) : tls(io, ctx), deadline(io) {}
    ssl::stream<tcp::socket> tls;
    asio::steady_timer deadline; // for the handshake
    frame_buffer in;
    byte_buffer writing;
    bool write_active = false;
    bool closed = false;
    std::string address;
    void close()
    {
        closed = true;
        deadline.cancel();
        boost::system::error_code ignored;
        tls.lowest_layer().close(ignored);
    }
};

struct links::peer {
    peer(asio::io_context& io, core& routing, peer_config c, const std::string& self,
         const link_options& o)
        : config(std::move(c)), retry(io), backoff(o.min_backoff)
    {
        host_link::settings s;
        s.self = self;
        s.peer = config.host;
        s.flow_credit = o.flow_credit;
        s.window = o.window;
        s.resume_window = o.resume_window;
        state = std::make_unique<host_link>(routing, s);
    }
    peer_config config;
    std::unique_ptr<host_link> state;
    std::shared_ptr<stream> current;
    asio::steady_timer retry;
    std::chrono::milliseconds backoff;
    bool dials = false;
    bool learned = false; // its address came from a beacon, not the peers file
    bool dialing = false;
    bool reading = false; // a read is under way on current
    bool closing = false; // it broke the protocol: closed once its fatal frame is out
    std::string last_error;
    host_link::clock::time_point last_ping{}, up_since{};
};

namespace {

constexpr std::chrono::seconds handshake_limit{3};
constexpr std::chrono::seconds stable_after{30};   // up this long: the back-off starts again
constexpr int max_unauthenticated = 64;            // handshakes under way at once, in all
constexpr int max_unauthenticated_per_address = 4; // and from one address (IPv6: /64)

} // namespace

links::links(asio::io_context& io, core& routing, link_options options, std::function<void()> flush)
    : io_(io), core_(routing), options_(std::move(options)), flush_core_(std::move(flush)),
      acceptor_(io), timer_(io), timer_for_accept_(io), jitter_(std::random_device{}())
{
}

links::~links() = default;

void links::start()
{
    const auto cert = options_.key_dir / "host.pem";
    const auto key = options_.key_dir / "host.key";
    std::string why;
    fingerprint_ = fingerprint_of_certificate(cert, why);
    if (fingerprint_.empty())
        throw std::runtime_error(why + " (make one with `slotbus keygen --dir " +
                                 options_.key_dir.string() + "`)");
    tls_ = std::make_unique<ssl::context>(detail::make_pinned_context(
        cert, key, [this](const std::string& fp) { return peer_by_fingerprint(fp) != nullptr; }));
    for (auto& config : options_.peers) {
        auto p = std::make_unique<peer>(io_, core_, config, core_.limits().host_name, options_);
        // One side dials: the one whose key has the lower fingerprint, so
        // two hosts never race each other's streams.
        p->dials = !config.address.empty() && fingerprint_ < config.fingerprint;
        if (config.address.empty() && fingerprint_ < config.fingerprint)
            warn("peer ", config.host,
                 ": this host is the one to dial it (its key's fingerprint "
                 "is the lower) but the peers file gives it no address; it waits to be dialled");
        peers_.push_back(std::move(p));
    }
    if (!options_.listen.empty()) {
        std::string host, port;
        if (!split_address(options_.listen, host, port))
            throw std::runtime_error("--link-listen " + options_.listen + ": not ADDR:PORT");
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(host, ec);
        if (ec)
            throw std::runtime_error("--link-listen " + options_.listen + ": " + ec.message());
        const tcp::endpoint at(address, static_cast<std::uint16_t>(std::stoul(port)));
        acceptor_.open(at.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(at, ec);
        if (ec)
            throw std::runtime_error("--link-listen " + options_.listen + ": " + ec.message());
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accept();
    }
    log("links: this host is ", fingerprint_, "; ", peers_.size(),
        peers_.size() == 1 ? " peer" : " peers",
        port_ ? ", listening on port " + std::to_string(port_) : std::string());
    for (auto& p : peers_)
        if (p->dials)
            dial(*p);
    tick();
}

void links::stop()
{
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    timer_.cancel();
    timer_for_accept_.cancel();
    for (auto& p : peers_) {
        p->retry.cancel();
        if (p->current)
            p->current->close();
        p->current.reset();
    }
}

void links::hint(const std::string& host, const std::string& address)
{
    const auto key = fold_case(host);
    for (auto& p : peers_) {
        if (p->config.host != key || (!p->config.address.empty() && !p->learned) ||
            p->config.address == address)
            continue;
        p->config.address = address;
        p->learned = true;
        p->dials = fingerprint_ < p->config.fingerprint;
        refusals_("peer ", p->config.host, ": a beacon says it listens on ", address,
                  p->dials ? "; dialling it there" : "");
        if (p->dials && !p->current && !p->dialing)
            dial(*p);
    }
}

links::peer* links::peer_by_fingerprint(const std::string& fingerprint)
{
    for (auto& p : peers_)
        if (p->config.fingerprint == fingerprint)
            return p.get();
    return nullptr;
}

// ---- streams ----------------------------------------------------------------------------

void links::accept()
{
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
        if (stopped_ || ec == asio::error::operation_aborted)
            return;
        if (ec) { // out of descriptors, say: try again a little later, not at once
            timer_for_accept_.expires_after(std::chrono::milliseconds(100));
            timer_for_accept_.async_wait([this](const boost::system::error_code& e) {
                if (!e)
                    accept();
            });
            return;
        }
        boost::system::error_code ignored;
        const auto address =
            handshake_source(socket.remote_endpoint(ignored).address()).to_string();
        // Bounded, and per address, so strangers holding handshakes open
        // cost a peer's dial 3 s at most and not all the slots.
        if (unauthenticated_ < max_unauthenticated &&
            handshaking_[address] < max_unauthenticated_per_address) {
            tune_for_frames(socket);
            auto s = std::make_shared<stream>(io_, *tls_);
            s->address = address;
            s->tls.lowest_layer() = std::move(socket);
            ++unauthenticated_;
            ++handshaking_[address];
            s->deadline.expires_after(handshake_limit);
            s->deadline.async_wait([s](const boost::system::error_code& e) {
                if (!e)
                    s->close(); // it never proved who it is
            });
            s->tls.async_handshake(
                ssl::stream_base::server, [this, s](const boost::system::error_code& e) {
                    --unauthenticated_;
                    if (--handshaking_[s->address] <= 0)
                        handshaking_.erase(s->address);
                    s->deadline.cancel();
                    if (stopped_ || s->closed)
                        return;
                    peer* p =
                        e ? nullptr
                          : peer_by_fingerprint(detail::peer_fingerprint(s->tls.native_handle()));
                    if (!p) {
                        refusals_("links: a connection from ", s->address,
                                  " refused: ", e ? e.message() : "its key is no peer's");
                        s->close();
                        return;
                    }
                    attach(*p, s);
                });
        } else if (handshaking_[address] == 0) {
            handshaking_.erase(address);
        }
        accept();
    });
}

void links::dial(peer& p)
{
    if (stopped_ || p.dialing || p.current)
        return;
    std::string host, port;
    split_address(p.config.address, host, port);
    p.dialing = true;
    auto resolver = std::make_shared<tcp::resolver>(io_);
    resolver->async_resolve(
        host, port,
        [this, &p, resolver](const boost::system::error_code& ec, tcp::resolver::results_type r) {
            if (stopped_)
                return;
            if (ec) {
                p.dialing = false;
                p.last_error = "cannot resolve " + p.config.address + ": " + ec.message();
                schedule_dial(p);
                return;
            }
            auto s = std::make_shared<stream>(io_, *tls_);
            s->address = p.config.address;
            s->deadline.expires_after(handshake_limit);
            s->deadline.async_wait([s](const boost::system::error_code& e) {
                if (!e)
                    s->close();
            });
            asio::async_connect(
                s->tls.lowest_layer(), r,
                [this, &p, s](const boost::system::error_code& e, const tcp::endpoint&) {
                    if (stopped_)
                        return;
                    if (e || s->closed) {
                        p.dialing = false;
                        p.last_error = "cannot connect to " + p.config.address + ": " +
                                       (e ? e.message() : "timed out");
                        schedule_dial(p);
                        return;
                    }
                    tune_for_frames(s->tls.next_layer());
                    s->tls.async_handshake(
                        ssl::stream_base::client,
                        [this, &p, s](const boost::system::error_code& h) {
                            s->deadline.cancel();
                            p.dialing = false;
                            if (stopped_)
                                return;
                            const auto fp = h ? std::string()
                                              : detail::peer_fingerprint(s->tls.native_handle());
                            if (h || s->closed || fp != p.config.fingerprint) {
                                p.last_error =
                                    "TLS with " + p.config.address + " failed: " +
                                    (h ? h.message()
                                       : "its key is not the one pinned for " + p.config.host);
                                s->close();
                                schedule_dial(p);
                                return;
                            }
                            attach(p, s);
                        });
                });
        });
}

void links::schedule_dial(peer& p)
{
    if (stopped_ || !p.dials)
        return;
    // Decorrelated jitter: hosts that lost a peer together do not call it together.
    const auto low = options_.min_backoff.count();
    const auto high = std::max<long long>(
        low, std::min<long long>(options_.max_backoff.count(), p.backoff.count() * 3));
    p.backoff =
        std::chrono::milliseconds(std::uniform_int_distribution<long long>(low, high)(jitter_));
    p.retry.expires_after(p.backoff);
    p.retry.async_wait([this, &p](const boost::system::error_code& ec) {
        if (!ec)
            dial(p);
    });
}

void links::attach(peer& p, std::shared_ptr<stream> s)
{
    const auto now = host_link::clock::now();
    if (p.current) { // the peer came back before this host noticed it had gone
        p.current->close();
        p.state->disconnected(now);
    }
    p.current = s;
    p.reading = false;
    p.closing = false;
    p.last_error.clear();
    p.up_since = now;
    p.last_ping = now;
    log("links: ", p.config.host, " connected (", s->address, ")");
    p.state->connected(now);
    write(p);
    read(p, std::move(s));
}

void links::read(peer& p, std::shared_ptr<stream> s)
{
    // A peer that sends and never reads would make this host queue answers
    // without end: past the bound it is not read (and, silent, is dropped).
    if (p.reading || p.closing || p.state->output_size() + s->writing.size() > max_output)
        return;
    p.reading = true;
    const auto room = s->in.prepare(core_.limits().max_frame_size() + 64);
    s->tls.async_read_some(
        asio::buffer(room.data(), room.size()),
        [this, &p, s](const boost::system::error_code& ec, std::size_t n) {
            if (stopped_ || s != p.current)
                return;
            p.reading = false;
            if (ec) {
                drop(p, ec == asio::error::eof || ec == ssl::error::stream_truncated
                            ? "the peer closed the stream"
                            : ec.message());
                return;
            }
            s->in.commit(n);
            const auto now = host_link::clock::now();
            bool broken = false;
            while (!broken) {
                auto found = s->in.next(core_.limits().max_frame_size() + 64);
                if (found.status == decoded_frame::need_more)
                    break;
                if (found.status == decoded_frame::invalid) {
                    drop(p, std::string("a frame that is none: ") + found.why);
                    return;
                }
                broken = !p.state->feed(found.frame, now);
                s->in.consume(found.size);
            }
            flush_core_(); // results for this host's writers; the links' output with them
            if (broken) {  // closed once its fatal frame is out (write() sees to it)
                p.closing = true;
                p.last_error = p.state->why();
                if (!s->write_active && !p.state->has_output())
                    drop(p, p.state->why());
                else
                    write(p);
                return;
            }
            read(p, s);
        });
}

void links::write(peer& p)
{
    auto s = p.current;
    if (!s || s->write_active || !p.state->has_output())
        return;
    p.state->take_output(s->writing);
    s->write_active = true;
    asio::async_write(s->tls, asio::buffer(s->writing),
                      [this, &p, s](const boost::system::error_code& ec, std::size_t) {
                          s->write_active = false;
                          if (stopped_ || s != p.current)
                              return;
                          if (ec) {
                              drop(p, ec.message());
                              return;
                          }
                          if (p.closing && !p.state->has_output()) {
                              drop(p, p.last_error);
                              return;
                          }
                          write(p);
                          read(p, s); // it may have been paused for output
                      });
}

void links::drop(peer& p, const std::string& why)
{
    if (!p.current)
        return;
    warn("links: ", p.config.host, " lost: ", why);
    p.last_error = why;
    p.current->close();
    p.current.reset();
    p.state->disconnected(host_link::clock::now());
    flush_core_(); // writers it held go on (and fail: the link is down)
    schedule_dial(p);
}

void links::flush()
{
    for (auto& p : peers_)
        write(*p);
}

void links::tick()
{
    if (stopped_)
        return;
    const auto now = host_link::clock::now();
    for (auto& owned : peers_) {
        peer& p = *owned;
        if (p.current && p.state->up()) {
            if (now - p.last_ping >= options_.heartbeat) {
                p.state->heartbeat(now);
                p.last_ping = now;
            }
            if (now - p.state->last_heard() > 3 * options_.heartbeat)
                drop(p, "no word from the peer for three heartbeats");
            else if (now - p.up_since > stable_after)
                p.backoff = options_.min_backoff;
        } else if (p.current && now - p.up_since > handshake_limit) {
            drop(p, "no link_hello from the peer");
        }
        p.state->tick(now);
    }
    flush();
    flush_core_();
    timer_.expires_after(std::chrono::milliseconds(250));
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec)
            tick();
    });
}

// ---- the core's side --------------------------------------------------------------------

std::uint64_t links::acquire(std::string_view host, const slot_name& name, std::error_code& ec)
{
    for (std::size_t i = 0; i < peers_.size(); ++i)
        if (peers_[i]->config.host == host) {
            const auto flow = peers_[i]->state->acquire(name, ec);
            return flow ? (std::uint64_t{i + 1} << 32) | flow : 0;
        }
    ec = error::bad_netpath;
    return 0;
}

void links::release(std::uint64_t destination)
{
    const auto i = (destination >> 32) - 1;
    if (i < peers_.size())
        peers_[i]->state->release(static_cast<std::uint32_t>(destination));
}

bool links::write(std::uint64_t destination, byte_span records, std::uint32_t count,
                  write_ticket ticket)
{
    return peers_.at((destination >> 32) - 1)
        ->state->write(static_cast<std::uint32_t>(destination), records, count, ticket);
}

bool links::collect(session_id id)
{
    for (auto& p : peers_)
        if (p->state->owns(id)) {
            p->state->collect(id);
            return true;
        }
    return false;
}

boost::json::array links::status() const
{
    boost::json::array out;
    for (const auto& p : peers_) {
        auto o = p->state->status();
        o["host"] = p->config.host;
        o["address"] = p->config.address;
        o["fingerprint"] = p->config.fingerprint;
        o["dials"] = p->dials;
        if (p->current)
            o["connected_to"] = p->current->address;
        if (!p->last_error.empty())
            o["last_error"] = p->last_error;
        out.push_back(std::move(o));
    }
    return out;
}

} // namespace slotbus::bus
