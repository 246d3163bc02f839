#include "slotbus/connection.hpp"

#include "slotbus/address.hpp"
#include "slotbus/detail/byte_stream.hpp"
#include "slotbus/detail/tls.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace slotbus {
namespace detail {

namespace {

/// The code without the place in Boost.Asio's source where it arose, which
/// would otherwise end up in the what() a user prints ("No such file or
/// directory [system:2 at /usr/include/boost/asio/detail/...]").
error_code without_location(const error_code& ec)
{
    return ec.has_location() ? error_code(ec.value(), ec.category()) : ec;
}

/// A host of another uid is trusted when the socket is that uid's and no one
/// but that uid or root can write in its directory or any directory above
/// it: then no one else can have put a listener on that path (a shared bus,
/// D-Bus system bus style). A directory in /tmp, or of another user, is not.
bool shared_by_its_owner(const std::string& socket_path, std::uint32_t uid)
{
    struct stat st {};
    if (::lstat(socket_path.c_str(), &st) != 0 || st.st_uid != uid)
        return false;
    const auto slash = socket_path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : socket_path.substr(0, slash + 1);
    char* real = ::realpath(dir.c_str(), nullptr); // every component a real directory
    if (!real)
        return false;
    std::string at(real);
    std::free(real);
    while (true) {
        if (::lstat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
            (st.st_uid != uid && st.st_uid != 0) || (st.st_mode & 022) != 0)
            return false;
        if (at == "/")
            return true;
        const auto up = at.find_last_of('/');
        at = up == 0 ? "/" : at.substr(0, up);
    }
}
/// The alert a TLS host sends when it does not take this client's certificate.
bool refused_key(const error_code& ec)
{
    if (ec.category() != asio::error::get_ssl_category())
        return false;
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        return true;
    default:
        return false;
    }
}

} // namespace

connection_impl::connection_impl(std::optional<asio::any_io_executor> executor,
                                 std::uint32_t window, std::string token, tls_options tls)
    : own_(executor ? nullptr : std::make_unique<asio::io_context>(1)),
      executor_(executor ? *executor : own_->get_executor()),
      stream_(std::make_unique<byte_stream>(executor_)),
      protocol_(window,
                [this](std::uint32_t handle) {
                    const auto it = waiting_.find(handle);
                    return it != waiting_.end() && !it->second.empty();
                }),
      token_(std::move(token)), tls_(std::move(tls)), run_timer_(executor_),
      lane_wait_timer_(executor_)
{
}

connection_impl::~connection_impl() = default;

// ---- entry points ---------------------------------------------------------------------------

void connection_impl::start_connect(std::string address, std::string client_name, reply_handler h)
{
    on_executor([self = shared_from_this(), address = std::move(address),
                 name = std::move(client_name),
                 h = std::move(h)]() mutable { self->connect_to(address, name, std::move(h)); });
}

void connection_impl::connect_to(const std::string& address, const std::string& client_name,
                                 reply_handler h)
{
    connecting_.emplace(std::move(h));
    failure_.clear();         // what the last attempt said is not this one's
    if (stream_->is_open()) { // connected, or connecting, already
        end_connect(asio::error::already_connected);
        return;
    }
    std::error_code parse_ec;
    const auto where = parse_address(address, parse_ec);
    if (parse_ec) {
        failure_ = "not a bus address: \"" + address +
                   "\" (use unix:PATH, tcp:HOST:PORT, tls:HOST:PORT or a socket path)";
        end_connect(parse_ec);
        return;
    }
    tls_context_.reset();
    if (where.kind == bus_address::transport::tls) {
        tls_context_ = make_tls_context();
        if (!tls_context_) {
            end_connect(error::invalid_parameter);
            return;
        }
    }
    if (where.kind != bus_address::transport::unix_socket)
        connect_tcp(where.host, where.port, client_name);
    else
        connect_unix(where.path, client_name);
}

void connection_impl::end_connect(error_code ec)
{
    auto handler = std::move(*connecting_);
    connecting_.reset();
    asio::post(executor_, asio::append(std::move(handler), without_location(ec), reply{}));
}

void connection_impl::connect_unix(const std::string& path, const std::string& client_name)
{
    auto& socket = stream_->reset<byte_stream::unix_socket>(executor_);
    socket.async_connect(asio::local::stream_protocol::endpoint(path), [self = shared_from_this(),
                                                                        generation = generation_,
                                                                        name = client_name,
                                                                        path](error_code ec) {
        if (generation != self->generation_ || !self->connecting_)
            return; // given up on already
        auto* connected = self->stream_->get<byte_stream::unix_socket>();
        if (!ec && connected) {
            // Whoever listens there hears our writes and answers our reads:
            // it must be our own uid or root (a socket another user put in
            // a shared directory is not our host).
            ucred cred{};
            socklen_t len = sizeof cred;
            if (::getsockopt(connected->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) !=
                0) {
                ec = error_code(errno, boost::system::system_category());
            } else if (cred.uid != ::geteuid() && cred.uid != 0 &&
                       !shared_by_its_owner(path, cred.uid)) {
                self->failure_ = "the host on " + path + " runs as uid " +
                                 std::to_string(cred.uid) + ", not as this user (uid " +
                                 std::to_string(::geteuid()) +
                                 ") or root, and others than that uid and root may write "
                                 "where the socket is: not trusted";
                ec = error::access_denied;
            }
        }
        if (ec) {
            if (ec != error::access_denied) // else it says why already
                self->failure_ = "cannot connect to unix:" + path + ": " + ec.message();
            self->stream_->close();
            self->end_connect(ec);
            return;
        }
        self->on_connected(name);
    });
}

void connection_impl::connect_tcp(const std::string& host, const std::string& port,
                                  const std::string& client_name)
{
    // No peer credentials over TCP: the identity of a TCP client is the
    // host's to decide (a token, a key), not the kernel's.
    auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor_);
    resolver->async_resolve(
        host, port,
        [self = shared_from_this(), generation = generation_, name = client_name, host, port,
         resolver](error_code ec, const asio::ip::tcp::resolver::results_type& endpoints) {
            if (generation != self->generation_ || !self->connecting_)
                return;
            if (ec) {
                self->failure_ = "cannot resolve " + host + ": " + ec.message();
                self->end_connect(ec);
                return;
            }
            auto& socket =
                self->tls_context_
                    ? self->stream_->reset_tls(self->executor_, self->tls_context_).next_layer()
                    : self->stream_->reset<byte_stream::tcp_socket>(self->executor_);
            asio::async_connect(
                socket, endpoints,
                [self, generation, name,
                 where = host + ":" + port](error_code connect_ec, const asio::ip::tcp::endpoint&) {
                    if (generation != self->generation_ || !self->connecting_)
                        return;
                    // Frames are small and pipelined: Nagle would hold a
                    // write back for the previous one's acknowledgement.
                    if (!connect_ec) {
                        const int on = 1;
                        if (::setsockopt(self->stream_->native_handle(), IPPROTO_TCP, TCP_NODELAY,
                                         &on, sizeof on) != 0)
                            connect_ec = error_code(errno, boost::system::system_category());
                    }
                    if (connect_ec) {
                        self->failure_ = "cannot connect to " + where + ": " + connect_ec.message();
                        self->stream_->close();
                        self->end_connect(connect_ec);
                        return;
                    }
                    if (self->stream_->get<byte_stream::tls_stream>())
                        self->handshake(where, name);
                    else
                        self->on_connected(name);
                });
        });
}

std::shared_ptr<asio::ssl::context> connection_impl::make_tls_context()
{
    if (tls_.key_dir.empty() || tls_.host_fingerprint.empty()) {
        failure_ = "a tls: address needs this client's key and the host's fingerprint "
                   "(connection_options::tls, or $SLOTBUS_TLS_KEY and $SLOTBUS_TLS_PIN)";
        return nullptr;
    }
    const std::filesystem::path dir = tls_.key_dir;
    try {
        // The verdict is kept for the handshake's error: which key the host showed.
        return std::make_shared<asio::ssl::context>(
            make_pinned_context(dir / "host.pem", dir / "host.key",
                                [self = weak_from_this()](const std::string& fingerprint) {
                                    auto me = self.lock();
                                    if (!me)
                                        return false;
                                    me->shown_fingerprint_ = fingerprint;
                                    return fingerprint == me->tls_.host_fingerprint;
                                }));
    } catch (const std::exception& e) {
        failure_ = std::string("this client's TLS key: ") + e.what() +
                   " (make one with `slotbus keygen --dir DIR`)";
        return nullptr;
    }
}

void connection_impl::handshake(const std::string& where, const std::string& client_name)
{
    shown_fingerprint_.clear();
    stream_->get<byte_stream::tls_stream>()->async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), generation = generation_, where, client_name](error_code ec) {
            if (generation != self->generation_ || !self->connecting_)
                return;
            // The verify callback judged the chain; the key that the
            // handshake ended with is the one that counts.
            auto* tls = self->stream_->get<byte_stream::tls_stream>();
            if (!ec &&
                (!tls || peer_fingerprint(tls->native_handle()) != self->tls_.host_fingerprint))
                ec = error::access_denied;
            if (ec) {
                if (!self->shown_fingerprint_.empty() &&
                    self->shown_fingerprint_ != self->tls_.host_fingerprint) {
                    self->failure_ = "the host at " + where + " showed the key " +
                                     self->shown_fingerprint_ + ", not the pinned " +
                                     self->tls_.host_fingerprint + ": not the host";
                    ec = error::access_denied;
                } else {
                    self->failure_ = "TLS with " + where + ": " + ec.message();
                }
                self->stream_->close();
                self->end_connect(ec);
                return;
            }
            self->on_connected(client_name);
        });
}

void connection_impl::on_connected(const std::string& client_name)
{
    // A plugin's token means something only to the host that launched it,
    // on its Unix socket: it is not sent anywhere else.
    const bool local = stream_->get<byte_stream::unix_socket>() != nullptr;
    // Lanes (docs/lanes.md) only where fds can pass: on the Unix socket,
    // unless $SLOTBUS_LANES=0 keeps every record on it.
    const char* lanes = std::getenv("SLOTBUS_LANES");
    reads_fds_ = local && !(lanes && std::string_view(lanes) == "0");
    protocol_.hello(static_cast<std::uint32_t>(::getpid()), client_name,
                    local ? token_ : std::string(), reads_fds_ ? hello_lanes : 0);
    flush();
    read_loop();
}

void connection_impl::start_request(byte_buffer frame, std::uint32_t request_id, reply_handler h)
{
    on_executor([self = shared_from_this(), frame = std::move(frame), request_id,
                 h = std::move(h)]() mutable {
        if (const auto failed = self->call_error()) {
            asio::post(self->executor_, asio::append(std::move(h), failed, reply{}));
            return;
        }
        self->protocol_.request(std::move(frame), request_id, std::move(h));
        self->flush();
    });
}

void connection_impl::start_write(std::uint32_t handle, std::span<const asio::const_buffer> records,
                                  write_handler h, results pace)
{
    auto& lanes = protocol_.lanes();
    if (lanes.wants(records))
        write_by_lane_in_pieces(handle, records, std::move(h), pace);
    else if (lanes.must_wait(handle)) // writes of the handle wait for lane room before it
        wait_for_lane(handle, records, std::move(h), pace, false);
    else
        write_by_socket(handle, records, std::move(h), pace);
}

void connection_impl::write_by_socket(std::uint32_t handle,
                                      std::span<const asio::const_buffer> records, write_handler h,
                                      results pace)
{
    std::size_t frame_size = 0; // at most, on the wire
    for (const auto& r : records)
        frame_size += frame_header_size + 8 + r.size();
    // The hot path: on the connection's own thread, the records go straight
    // into the output, joining the write frame before them when they can.
    // (The window is read only there: off that thread it belongs to another.)
    if (on_this_thread() && !call_error() && protocol_.may_write_now(frame_size)) {
        protocol_.write(handle, records, std::move(h), pace, frame_size);
        flush();
        return;
    }
    const auto count = static_cast<std::uint32_t>(records.size());
    byte_buffer frame;
    frame.reserve(frame_size);
    record_list_builder builder(pace == results::when_convenient ? frame_type::post
                                                                 : frame_type::write);
    for (const auto& r : records)
        builder.append(frame, handle,
                       byte_span(static_cast<const std::uint8_t*>(r.data()), r.size()));
    on_executor([self = shared_from_this(), frame = std::move(frame), h = std::move(h), count,
                 pace]() mutable {
        if (const auto failed = self->call_error()) {
            // Never sent: it was not delivered (a write the host may have
            // taken fails with netname_deleted instead, in fail()).
            asio::post(self->executor_, asio::append(std::move(h), failed, std::uint32_t{0}));
            return;
        }
        self->protocol_.write_frame(std::move(frame), std::move(h), count, pace);
        self->flush();
    });
}

void connection_impl::write_by_lane_in_pieces(std::uint32_t handle,
                                              std::span<const asio::const_buffer> records,
                                              write_handler h, results pace)
{
    const auto piece_bytes = protocol_.lanes().piece_bytes(handle);
    std::size_t total = 0, end = 0;
    for (const auto& r : records)
        total += r.size();
    if (records.size() < 2 || total <= piece_bytes)
        return write_by_lane(handle, records, std::move(h), pace);
    // One completion for the pieces, as for the batch: the first error, the sum delivered.
    struct gather {
        gather(write_handler h, std::size_t n) : handler(std::move(h)), left(n) {}
        std::mutex mutex; // the pieces may complete on any of the executor's threads
        write_handler handler;
        std::size_t left;
        error_code first;
        std::uint32_t delivered = 0;
    };
    std::vector<std::span<const asio::const_buffer>> pieces;
    for (std::size_t begin = 0; begin < records.size(); begin = end) {
        std::size_t bytes = records[begin].size();
        for (end = begin + 1; end < records.size() && bytes + records[end].size() <= piece_bytes;
             ++end)
            bytes += records[end].size();
        pieces.push_back(records.subspan(begin, end - begin));
    }
    auto all = std::make_shared<gather>(std::move(h), pieces.size());
    for (const auto& piece : pieces)
        write_by_lane(
            handle, piece,
            [all](error_code ec, std::uint32_t delivered) {
                std::unique_lock lock(all->mutex);
                if (ec && !all->first)
                    all->first = ec;
                all->delivered += delivered;
                if (--all->left != 0)
                    return;
                lock.unlock();
                all->handler(all->first, all->delivered);
            },
            pace);
}

void connection_impl::write_by_lane(std::uint32_t handle,
                                    std::span<const asio::const_buffer> records, write_handler h,
                                    results pace)
{
    auto& lanes = protocol_.lanes();
    const auto socket_limit = max_record_size();
    std::size_t largest = 0;
    for (const auto& r : records)
        largest = std::max(largest, r.size());
    bool ask = false;
    const auto count = static_cast<std::uint32_t>(records.size());
    const auto placed = lanes.place(
        handle, records, pace == results::when_convenient, largest <= socket_limit, false, ask,
        [&](byte_buffer frame, std::uint64_t generation) {
            std::lock_guard lock(placed_mutex_);
            placed_.push_back({handle, std::move(frame), std::move(h), count, pace, generation});
        });
    if (ask)
        on_executor([self = shared_from_this(), handle, generation = lanes.generation(),
                     size = static_cast<std::uint32_t>(largest)] {
            if (generation != self->protocol_.lanes().generation() || self->broken_)
                return; // a connection gone: the lanes start afresh with the next
            byte_buffer frame;
            encode(frame, lane_request_frame{handle, size});
            self->protocol_.send(std::move(frame));
            self->flush();
        });
    switch (placed) {
    case lane_writers::placement::placed:
        on_executor([self = shared_from_this()] { self->send_placed(); });
        return;
    case lane_writers::placement::socket:
        write_by_socket(handle, records, std::move(h), pace);
        return;
    case lane_writers::placement::wait:
        wait_for_lane(handle, records, std::move(h), pace, true);
        return;
    case lane_writers::placement::refused:
        asio::post(executor_,
                   asio::append(std::move(h), error_code(error::message_exceeds_max_size),
                                std::uint32_t{0}));
        return;
    }
}

void connection_impl::send_placed()
{
    std::list<placed_write> ready;
    {
        std::lock_guard lock(placed_mutex_);
        ready.splice(ready.end(), placed_);
    }
    for (auto& w : ready) {
        // A frame of the lanes' present generation names a lane of this
        // connection, which expects it: it goes, whatever else is wrong.
        if (w.generation != protocol_.lanes().generation()) {
            asio::post(executor_, asio::append(std::move(w.handler), error_code(error::broken_pipe),
                                               std::uint32_t{0}));
            continue;
        }
        protocol_.write_frame(std::move(w.frame), std::move(w.handler), w.records, w.pace);
    }
    flush();
}

void connection_impl::wait_for_lane(std::uint32_t handle,
                                    std::span<const asio::const_buffer> records, write_handler h,
                                    results pace, bool by_lane)
{
    waiting_write w{{}, {}, std::move(h), pace, by_lane};
    for (const auto& r : records) {
        const auto* bytes = static_cast<const std::uint8_t*>(r.data());
        w.bytes.insert(w.bytes.end(), bytes, bytes + r.size());
        w.sizes.push_back(static_cast<std::uint32_t>(r.size()));
    }
    on_executor([self = shared_from_this(), handle, w = std::move(w)]() mutable {
        self->waiting_writes_[handle].push_back(std::move(w));
        self->drain_waiting_writes();
    });
}

void connection_impl::drain_waiting_writes(bool moved)
{
    auto& lanes = protocol_.lanes();
    for (auto it = waiting_writes_.begin(); it != waiting_writes_.end();) {
        const auto handle = it->first;
        auto& queue = it->second;
        while (!queue.empty()) {
            auto& w = queue.front();
            std::vector<asio::const_buffer> records;
            std::size_t at = 0, largest = 0;
            for (const auto size : w.sizes) {
                records.emplace_back(w.bytes.data() + at, size);
                at += size;
                largest = std::max<std::size_t>(largest, size);
            }
            auto placement = lane_writers::placement::socket;
            bool ask = false;
            if (w.by_lane)
                placement = lanes.place(handle, records, w.pace == results::when_convenient,
                                        largest <= max_record_size(), true, ask,
                                        [&](byte_buffer frame, std::uint64_t generation) {
                                            std::lock_guard lock(placed_mutex_);
                                            placed_.push_back(
                                                {handle, std::move(frame), std::move(w.handler),
                                                 static_cast<std::uint32_t>(records.size()), w.pace,
                                                 generation});
                                        });
            else
                lanes.stop_waiting(handle);
            if (ask) {
                byte_buffer frame;
                encode(frame, lane_request_frame{handle, static_cast<std::uint32_t>(largest)});
                protocol_.send(std::move(frame));
            }
            if (placement == lane_writers::placement::wait)
                break;
            if (placement == lane_writers::placement::socket)
                write_by_socket(handle, records, std::move(w.handler), w.pace);
            else if (placement == lane_writers::placement::refused)
                asio::post(executor_, asio::append(std::move(w.handler),
                                                   error_code(error::message_exceeds_max_size),
                                                   std::uint32_t{0}));
            queue.pop_front();
        }
        it = queue.empty() ? waiting_writes_.erase(it) : std::next(it);
    }
    send_placed();
    arm_lane_wait(moved);
}

void connection_impl::arm_lane_wait(bool moved)
{
    if (waiting_writes_.empty() || broken_) {
        if (std::exchange(lane_wait_armed_, 0) != 0)
            lane_wait_timer_.cancel();
        return;
    }
    if (lane_wait_armed_ != 0 && !moved)
        return; // a write joining the wait does not put the deadline off
    lane_wait_armed_ = ++lane_wait_armings_;
    lane_wait_timer_.expires_after(lane_writers::lane_wait);
    lane_wait_timer_.async_wait(
        [weak = weak_from_this(), armed = lane_wait_armed_](const error_code& ec) {
            auto self = weak.lock();
            if (!self || ec || self->lane_wait_armed_ != armed)
                return; // put off, or ended
            self->lane_wait_armed_ = 0;
            if (self->protocol_.lanes().stall())
                self->drain_waiting_writes();
        });
}

void connection_impl::end_waiting_writes(std::uint32_t handle, error_code ec)
{
    for (auto it = waiting_writes_.begin(); it != waiting_writes_.end();) {
        if (handle != 0 && it->first != handle) {
            ++it;
            continue;
        }
        for (auto& w : it->second) {
            protocol_.lanes().stop_waiting(it->first);
            asio::post(executor_, asio::append(std::move(w.handler), ec, std::uint32_t{0}));
        }
        it = waiting_writes_.erase(it);
    }
}

void connection_impl::tell_lost(std::uint32_t handle, std::uint32_t count)
{
    on_executor([self = shared_from_this(), handle, count] {
        if (self->call_error()) // not connected: no record follows it on this connection either
            return;
        self->protocol_.tell_lost(handle, count);
        self->flush();
    });
}

error_code connection_impl::call_error() const noexcept
{
    const bool restoring = run_ && !run_->stopping && !run_->connected;
    if (!broken_ && !restoring)
        return {};
    if (broken_ && std::error_code(broken_).category() == error_category())
        return broken_; // the host's reason (invalid_data, …) or broken_pipe
    return error::broken_pipe;
}

bool connection_impl::on_this_thread() const
{
    if (own_)
        return true; // used by one thread at a time, by contract
    const auto* io = executor_.target<asio::io_context::executor_type>();
    return io && io->running_in_this_thread(); // other executors take the posted path
}

void connection_impl::start_read(std::uint32_t handle, read_handler h, asio::mutable_buffer into,
                                 std::size_t batch)
{
    on_executor([self = shared_from_this(), handle, h = std::move(h), into, batch]() mutable {
        read_op op{self->next_read_op_++, std::move(h), into, nullptr,
                   std::max<std::size_t>(batch, 1)};
        auto* r = self->protocol_.find_reader(handle);
        const bool gone_for_good = self->broken_ && !self->reconnecting();
        if (!r || (gone_for_good && r->records.empty())) {
            self->complete_read(
                op, self->broken_ ? self->call_error() : error_code(error::invalid_handle), {}, 0);
            return;
        }
        if (r->revoked) {
            self->complete_read(op, r->revoked, {}, 0);
            return;
        }
        self->protocol_.first_read(handle, *r);
        auto& waiting = self->waiting_[handle];
        waiting.push_back(std::move(op));
        read_op& queued = waiting.back();
        // Per-operation cancellation: a bound cancellation slot ends this read alone.
        auto cancel = std::visit(
            [](auto& handler) { return asio::get_associated_cancellation_slot(handler); },
            queued.handler);
        if (cancel.is_connected())
            cancel.assign(
                [weak = std::weak_ptr(self), handle, id = queued.id](asio::cancellation_type) {
                    if (auto strong = weak.lock())
                        strong->finish(handle, id, asio::error::operation_aborted);
                });
        if (r->records.empty()) {
            if (r->read_timeout == 0 && self->call_error()) {
                // Between connections: nothing is queued here, say so at once.
                self->finish(handle, queued.id, error::sem_timeout);
                return;
            }
            if (r->read_timeout == 0)
                self->protocol_.poll(handle, queued.id); // the host answers what it has
            else
                self->arm_wait(handle, queued, r->read_timeout);
        }
        self->serve(handle, *r, waiting);
        if (!waiting.empty())
            self->protocol_.reports_due(); // it waits: the host must know what it has read
        self->flush();
    });
}

void connection_impl::add_reader(std::uint32_t handle, std::uint32_t read_timeout)
{
    on_executor([self = shared_from_this(), handle, read_timeout] {
        self->protocol_.add_reader(handle, read_timeout);
    });
}

void connection_impl::cancel_reads(std::uint32_t handle)
{
    on_executor([self = shared_from_this(), handle] {
        if (self->protocol_.find_reader(handle)) {
            self->end_reads(handle, asio::error::operation_aborted);
            self->protocol_.read_ended(handle);
            self->flush();
        }
    });
}

void connection_impl::drop_reader(std::uint32_t handle)
{
    on_executor([self = shared_from_this(), handle] {
        if (self->protocol_.drop_reader(handle))
            self->end_reads(handle, asio::error::operation_aborted);
    });
}

void connection_impl::end_reads(std::uint32_t handle, error_code ec)
{
    auto it = waiting_.find(handle);
    if (it == waiting_.end())
        return;
    auto waiting = std::move(it->second);
    waiting_.erase(it);
    for (auto& op : waiting)
        complete_read(op, ec, {}, 0);
}

void connection_impl::close()
{
    auto stop = [](connection_impl& self) {
        if (self.run_)
            self.run_->stopping = true; // no reconnect after this
        if (self.broken_)
            self.shut_down(error::broken_pipe); // between attempts: end what waits
        else
            self.fail(asio::error::operation_aborted);
    };
    if (own_) {
        // Nobody else runs the owned context: close here, then let every
        // aborted operation finish so no handler keeps this object alive —
        // unless this is a handler, whose run() finishes them itself.
        stop(*this);
        if (own_->get_executor().running_in_this_thread())
            return;
        own_->restart();
        own_->run();
        return;
    }
    on_executor([self = shared_from_this(), stop] { stop(*self); });
}

// ---- I/O ------------------------------------------------------------------------------------

void connection_impl::flush()
{
    if (write_active_ || broken_)
        return; // reports coalesce until the write under way is done
    if (!protocol_.take_output(writing_))
        return;
    write_active_ = true;
    std::size_t sent = 0;
    if (!stream_->get<byte_stream::tls_stream>()) {
        // What the socket takes now goes now. On an owned context this is
        // also what keeps a blocking call made inside a handler from
        // waiting on itself: Asio queues an at-once completion behind the
        // running handler (one thread), where the nested run_one of wait()
        // never sees it — and the frames behind this write would wait too.
        while (sent < writing_.size()) {
            const auto n = ::send(stream_->native_handle(), writing_.data() + sent,
                                  writing_.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                // Failed later, from the executor: the caller may be walking
                // what a failure ends.
                asio::post(executor_, [self = shared_from_this(), generation = generation_,
                                       ec = error_code(errno, boost::system::system_category())] {
                    if (generation == self->generation_)
                        self->fail(ec);
                });
                return;
            }
            break; // full: the rest when it drains
        }
        if (sent == writing_.size()) {
            write_active_ = false;
            if (protocol_.has_output())
                flush();
            return;
        }
    }
    // One write at a time; whatever queues meanwhile goes out with the next.
    stream_->async_write(
        asio::buffer(writing_.data() + sent, writing_.size() - sent),
        [self = shared_from_this(), generation = generation_](const error_code& ec, std::size_t) {
            if (generation != self->generation_)
                return; // a socket given up on
            self->write_active_ = false;
            if (ec)
                self->fail(ec);
            else
                self->flush();
        });
}

void connection_impl::read_loop()
{
    if (reads_fds_) {
        read_with_fds();
        return;
    }
    const auto room = in_.prepare(protocol_.max_frame());
    stream_->async_read_some(
        asio::buffer(room.data(), room.size()),
        [self = shared_from_this(), generation = generation_](const error_code& ec, std::size_t n) {
            if (generation != self->generation_ || self->broken_)
                return; // a socket given up on
            if (ec) {
                // TLS 1.3 tells a client its key was refused only after its
                // handshake is done: as the alert that ends its first read.
                if (self->connecting_ && refused_key(ec))
                    self->fail(error::access_denied,
                               "the host refused this client's key (" + ec.message() + ")");
                else
                    self->fail(error::broken_pipe, ec.message());
                return;
            }
            self->on_bytes(n);
        });
}

void connection_impl::read_with_fds()
{
    stream_->async_wait_readable(
        [self = shared_from_this(), generation = generation_](const error_code& ec) {
            if (generation != self->generation_ || self->broken_)
                return;
            if (ec) {
                self->fail(error::broken_pipe, ec.message());
                return;
            }
            const auto room = self->in_.prepare(self->protocol_.max_frame());
            iovec iov{room.data(), room.size()};
            // The host sends one fd with a frame; a read stops at the bytes that carry one.
            alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            const auto n =
                ::recvmsg(self->stream_->native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                self->read_loop();
                return;
            }
            if (n < 0) {
                self->fail(error::broken_pipe, std::strerror(errno));
                return;
            }
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                    continue;
                const auto fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < fds; ++i) {
                    int fd = -1;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    self->protocol_.take_fd(fd);
                }
            }
            if ((msg.msg_flags & MSG_CTRUNC) != 0) {
                self->fail(error::invalid_data, "the host sent more fds than a frame carries");
                return;
            }
            if (n == 0) {
                self->fail(error::broken_pipe, "the host closed the connection");
                return;
            }
            self->on_bytes(static_cast<std::size_t>(n));
        });
}

void connection_impl::on_bytes(std::size_t n)
{
    last_heard_ = std::chrono::steady_clock::now();
    in_.commit(n);
    while (!broken_) {
        auto found = in_.next(protocol_.max_frame());
        if (found.status == decoded_frame::need_more)
            break;
        if (found.status == decoded_frame::invalid) {
            fail(error::invalid_data, found.why);
            return;
        }
        in_.consume(found.size);
        act(protocol_.on_frame(found.frame));
    }
    if (!broken_) {
        flush();
        read_loop();
    }
}

void connection_impl::act(frame_action&& a)
{
    using kind = frame_action::kind;
    switch (a.what) {
    case kind::none:
        return;
    case kind::welcomed:
        if (!connecting_)
            return fail(error::invalid_data, "malformed frame from the host");
        end_connect({}); // the connect completes
        return;
    case kind::answered:
        asio::post(executor_, asio::append(std::move(*a.request), a.ec, std::move(a.answer)));
        return;
    case kind::records:
        if (auto* r = protocol_.find_reader(a.handle))
            if (auto w = waiting_.find(a.handle); w != waiting_.end())
                serve(a.handle, *r, w->second);
        return;
    case kind::poll_answered: {
        auto* r = protocol_.find_reader(a.handle);
        auto w = waiting_.find(a.handle);
        if (!r || w == waiting_.end())
            return;
        for (auto& op : w->second)
            if (op.id == a.read_op) {
                arm_wait(a.handle, op, r->read_timeout);
                break;
            }
        return;
    }
    case kind::timeout_changed: {
        auto* r = protocol_.find_reader(a.handle);
        auto w = waiting_.find(a.handle);
        if (!r || w == waiting_.end())
            return;
        auto& waiting = w->second; // a list: arm_wait erases only its own op
        for (auto op = waiting.begin(); op != waiting.end();)
            arm_wait(a.handle, *std::exchange(op, std::next(op)), r->read_timeout);
        return;
    }
    case kind::lanes_changed:
        drain_waiting_writes(true);
        return;
    case kind::revoked:
    case kind::reader_lost:
        end_reads(a.handle, a.ec);
        return;
    case kind::fail:
        fail(a.ec, std::move(a.why));
        return;
    }
}

// ---- reads ----------------------------------------------------------------------------------

void connection_impl::serve(std::uint32_t handle, reader_state& r, read_queue& waiting)
{
    const auto report = [&](std::uint32_t n, std::uint64_t bytes) {
        switch (protocol_.consumed(handle, r, n, bytes)) {
        case client_protocol::report_due::now:
            flush();
            break;
        case client_protocol::report_due::when_idle:
            if (!own_) // on an executor: after the handlers that run now, if none sent it
                asio::post(executor_, [self = shared_from_this()] {
                    self->protocol_.reports_due();
                    self->flush();
                });
            break;
        case client_protocol::report_due::later:
            break;
        }
    };
    while (!waiting.empty() && !r.records.empty()) {
        read_op op = std::move(waiting.front());
        waiting.pop_front();
        const auto kind = op.handler.index();
        if (kind == 3 || kind == 4) {
            // A batch: everything here, up to its limit, in one completion.
            const auto n = std::min(op.batch, r.records.size());
            std::uint64_t bytes = 0;
            for (std::size_t i = 0; i < n; ++i)
                bytes += r.records[i].size;
            std::vector<received_record> records;
            record_batch views;
            if (kind == 3) {
                records.reserve(n);
                for (std::size_t i = 0; i < n; ++i) {
                    records.push_back({std::string(r.front()), r.records.front().missed_before,
                                       protocol_.sender_of(r.records.front().sender)});
                    r.pop_front();
                }
            } else {
                // Views: the bytes pushed by the socket as they are held,
                // lengths and all, a run in one copy; a lane's record copied
                // out of its lane (the host may let its writer reuse it once
                // reported read).
                const std::size_t wire = r.wire(n);
                std::size_t in_lanes = 0;
                for (std::size_t i = 0; i < n; ++i)
                    in_lanes += r.records[i].lane ? r.records[i].size : 0;
                views.reserve(n, wire + in_lanes);
                std::uint32_t last = 0;
                std::shared_ptr<const record_sender> from;
                const auto sender = [&](std::size_t i) {
                    if (const auto s = r.records[i].sender; s != last || i == 0) {
                        last = s;
                        from = protocol_.sender_of(s);
                    }
                    return from;
                };
                std::size_t held = r.begin; // the next socket record's length in r.bytes
                for (std::size_t i = 0; i < n;) {
                    const auto& first = r.records[i];
                    if (first.lane) {
                        const auto at = views.append_wire(
                            {reinterpret_cast<const char*>(first.lane), first.size});
                        views.append_entry(at, first.size, first.missed_before, sender(i));
                        ++i;
                        continue;
                    }
                    std::size_t end = i, run = 0;
                    for (; end < n && !r.records[end].lane; ++end)
                        run += 4 + r.records[end].size;
                    std::size_t at = views.append_wire({r.bytes.data() + held, run});
                    held += run;
                    for (; i < end; ++i) {
                        views.append_entry(at + 4, r.records[i].size, r.records[i].missed_before,
                                           sender(i));
                        at += 4 + r.records[i].size;
                    }
                }
                r.pop_front(n, wire);
            }
            report(static_cast<std::uint32_t>(n), bytes);
            if (op.timer)
                op.timer->cancel();
            std::visit([](auto& h) { asio::get_associated_cancellation_slot(h).clear(); },
                       op.handler);
            if (kind == 3)
                asio::post(executor_, asio::append(std::move(std::get<3>(op.handler)), error_code{},
                                                   std::move(records)));
            else
                asio::post(executor_, asio::append(std::move(std::get<4>(op.handler)), error_code{},
                                                   std::move(views)));
            continue;
        }
        const std::size_t size = r.records.front().size;
        const bool into_buffer = kind == 1;
        if (into_buffer && size > op.into.size()) {
            // Too small: the record stays, whole; the caller learns its size.
            complete_read(op, error::insufficient_buffer, {}, size);
            continue;
        }
        received_record record;
        if (into_buffer) {
            if (size)
                std::memcpy(op.into.data(), r.front().data(), size);
        } else {
            record = {std::string(r.front()), r.records.front().missed_before,
                      protocol_.sender_of(r.records.front().sender)};
        }
        r.pop_front();
        report(1, size);
        complete_read(op, {}, std::move(record), size);
    }
}

void connection_impl::arm_wait(std::uint32_t handle, read_op& op, std::uint32_t timeout)
{
    if (op.timer)
        op.timer->cancel();
    op.timer.reset();
    if (timeout == 0) {
        finish(handle, op.id, error::sem_timeout);
        return;
    }
    if (timeout == mailslot_wait_forever)
        return;
    op.timer = std::make_unique<asio::steady_timer>(executor_, std::chrono::milliseconds(timeout));
    op.timer->async_wait(
        [weak = std::weak_ptr(shared_from_this()), handle, id = op.id](const error_code& ec) {
            if (auto strong = weak.lock(); strong && !ec)
                strong->finish(handle, id, error::sem_timeout);
        });
}

void connection_impl::finish(std::uint32_t handle, std::uint64_t op_id, error_code ec)
{
    auto it = waiting_.find(handle);
    if (it == waiting_.end())
        return;
    auto& waiting = it->second;
    for (auto op = waiting.begin(); op != waiting.end(); ++op)
        if (op->id == op_id) {
            read_op done = std::move(*op);
            waiting.erase(op);
            complete_read(done, ec, {}, 0);
            protocol_.read_ended(handle);
            flush();
            return;
        }
}

void connection_impl::complete_read(read_op& op, error_code ec, received_record record,
                                    std::size_t size)
{
    if (op.timer)
        op.timer->cancel();
    std::visit([](auto& h) { asio::get_associated_cancellation_slot(h).clear(); }, op.handler);
    switch (op.handler.index()) {
    case 0:
        asio::post(executor_,
                   asio::append(std::move(std::get<0>(op.handler)), ec, std::move(record.data)));
        break;
    case 1:
        asio::post(executor_, asio::append(std::move(std::get<1>(op.handler)), ec, size));
        break;
    case 2:
        asio::post(executor_,
                   asio::append(std::move(std::get<2>(op.handler)), ec, std::move(record)));
        break;
    case 3: { // a batch ends without records only on an error
        std::vector<received_record> none;
        if (!ec)
            none.push_back(std::move(record));
        asio::post(executor_,
                   asio::append(std::move(std::get<3>(op.handler)), ec, std::move(none)));
        break;
    }
    default: {
        record_batch none;
        if (!ec)
            none.append(record.data, record.missed_before);
        asio::post(executor_,
                   asio::append(std::move(std::get<4>(op.handler)), ec, std::move(none)));
    }
    }
}

// ---- failure --------------------------------------------------------------------------------

void connection_impl::fail(error_code ec, std::string why)
{
    if (broken_)
        return;
    failure_ = why.empty() ? ec.message() : std::move(why);
    ++generation_; // handlers of this socket stand down from here on
    broken_ = ec == asio::error::operation_aborted ? error_code(error::broken_pipe)
                                                   : without_location(ec);
    stream_->close();
    write_active_ = false;
    in_.clear();
    const bool again = reconnecting();
    auto lost = protocol_.fail(again);
    const error_code gone = error::broken_pipe;
    if (connecting_)
        end_connect(ec);
    for (auto& h : lost.requests)
        asio::post(executor_, asio::append(std::move(h), gone, reply{}));
    // Sent, and no result came: the host may have delivered them or not.
    const error_code unknown = error::netname_deleted;
    for (auto& h : lost.sent)
        asio::post(executor_, asio::append(std::move(h), unknown, std::uint32_t{0}));
    for (auto& h : lost.queued)
        asio::post(executor_, asio::append(std::move(h), gone, std::uint32_t{0}));
    end_waiting_writes(0, gone);                // their lanes are gone: never sent
    send_placed();                              // (ends those placed in them with broken_pipe)
    for (const auto& [handle, op] : lost.polls) // their answers will not come
        finish(handle, op, gone);
    for (const auto& [handle, lost_ec] : lost.lost_readers)
        end_reads(handle, lost_ec);
    if (again) {
        // Reads waiting stay, served by the slots the reconnect re-creates
        // (client_protocol::fail kept what the readers hold).
        run_->connected = false;
        schedule_reconnect();
        return;
    }
    shut_down(gone);
}

void connection_impl::shut_down(error_code gone)
{
    // Reads waiting end; records this end holds stay readable (then reads
    // fail with `gone`): they were pushed before the connection went.
    for (auto& [handle, waiting] : waiting_) {
        for (auto& op : waiting)
            complete_read(op, gone, {}, 0);
        waiting.clear();
    }
    protocol_.forget_reports();
    run_timer_.cancel();
    lane_wait_armed_ = 0;
    lane_wait_timer_.cancel();
    if (run_ && run_->done) {
        auto done = std::move(*run_->done);
        run_->done.reset();
        asio::post(executor_,
                   asio::append(std::move(done), error_code(asio::error::operation_aborted)));
    }
}

// ---- keeping a connection up ------------------------------------------------------------------

void connection_impl::start_run(std::string address, std::string client_name, run_timing timing,
                                run_handler h)
{
    on_executor([self = shared_from_this(), address = std::move(address),
                 name = std::move(client_name), timing, h = std::move(h)]() mutable {
        self->run_.emplace(run_state{}); // (clang 14: no emplace() of a nested aggregate)
        self->run_->address = std::move(address);
        self->run_->client_name = std::move(name);
        self->run_->timing = timing;
        self->run_->backoff = timing.min_backoff;
        self->run_->done.emplace(std::move(h));
        if (!self->broken_ && self->protocol_.welcomed()) {
            self->run_->connected = true; // connected already: keep it up from here
            self->last_heard_ = std::chrono::steady_clock::now();
            self->heartbeat();
        } else {
            // Until the connection is restored, reports wait for their slots.
            self->protocol_.hold_reports(true);
            self->attempt();
        }
    });
}

void connection_impl::attempt()
{
    stream_->close();
    broken_ = {};
    protocol_.reset_output();
    in_.clear();
    connect_to(run_->address, run_->client_name, [self = shared_from_this()](error_code ec, reply) {
        if (!self->reconnecting())
            return;
        if (ec) {
            self->fail(ec); // and try again after the back-off
            return;
        }
        self->on_restored_connection();
    });
    // A host that accepts but never welcomes (stopped, wedged) is given up on.
    run_timer_.expires_after(3 * run_->timing.heartbeat);
    run_timer_.async_wait(
        [weak = weak_from_this(), generation = generation_](const error_code& ec) {
            auto self = weak.lock();
            if (self && !ec && generation == self->generation_ && self->reconnecting() &&
                !self->run_->connected)
                self->fail(error::broken_pipe, "no welcome in time");
        });
}

void connection_impl::on_restored_connection()
{
    run_->backoff = run_->timing.min_backoff;
    last_heard_ = std::chrono::steady_clock::now();
    restore();
    heartbeat();
}

void connection_impl::restore()
{
    const auto dropped = protocol_.restore([this](std::uint32_t handle) {
        const auto it = waiting_.find(handle);
        return it != waiting_.end() && !it->second.empty();
    });
    for (auto handle : dropped) // attached duplicates: their tokens were spent
        end_reads(handle, error::broken_pipe);
    run_->connected = true;
    flush();
}

void connection_impl::heartbeat()
{
    run_timer_.expires_after(run_->timing.heartbeat);
    run_timer_.async_wait(
        [weak = weak_from_this(), generation = generation_](const error_code& ec) {
            auto self = weak.lock();
            if (!self || ec || generation != self->generation_ || !self->reconnecting())
                return;
            if (std::chrono::steady_clock::now() - self->last_heard_ >
                3 * self->run_->timing.heartbeat) {
                self->fail(error::broken_pipe, "the host stopped answering");
                return;
            }
            self->protocol_.ping();
            self->flush();
            self->heartbeat();
        });
}

void connection_impl::schedule_reconnect()
{
    run_timer_.expires_after(run_->backoff);
    run_->backoff = std::min(run_->backoff * 2, run_->timing.max_backoff);
    run_timer_.async_wait(
        [weak = weak_from_this(), generation = generation_](const error_code& ec) {
            auto self = weak.lock();
            if (self && !ec && generation == self->generation_ && self->reconnecting())
                self->attempt();
        });
}

void connection_impl::remember(std::uint32_t handle, restorable what)
{
    on_executor([self = shared_from_this(), handle, what = std::move(what)]() mutable {
        self->protocol_.remember(handle, std::move(what));
    });
}

void connection_impl::remember_pattern(std::uint32_t handle, std::string pattern, bool subscribed)
{
    on_executor(
        [self = shared_from_this(), handle, pattern = std::move(pattern), subscribed]() mutable {
            self->protocol_.remember_pattern(handle, std::move(pattern), subscribed);
        });
}

void connection_impl::remember_timeout(std::uint32_t handle, std::uint32_t read_timeout)
{
    on_executor([self = shared_from_this(), handle, read_timeout] {
        self->protocol_.remember_timeout(handle, read_timeout);
    });
}

void connection_impl::forget(std::uint32_t handle)
{
    on_executor([self = shared_from_this(), handle] {
        // Writes still waiting for lane room are not delivered: the handle is closed.
        self->end_waiting_writes(handle, error::invalid_handle);
        self->protocol_.lanes().forget(handle);
        self->protocol_.forget(handle);
    });
}

} // namespace detail

// ---- connection -----------------------------------------------------------------------------

connection::connection(connection_options options)
    : impl_(std::make_shared<detail::connection_impl>(std::nullopt, options.window,
                                                      options.plugin_token, options.tls)),
      options_(std::move(options))
{
}

connection::connection(boost::asio::any_io_executor executor, connection_options options)
    : impl_(std::make_shared<detail::connection_impl>(executor, options.window,
                                                      options.plugin_token, options.tls)),
      options_(std::move(options))
{
}

connection::~connection()
{
    if (impl_)
        impl_->close();
}

void connection::connect(const std::string& address, std::error_code& ec)
{
    impl_->wait<detail::reply>(
        [&](auto h) { impl_->start_connect(address, options_.client_name, std::move(h)); }, ec);
}

void connection::connect(const std::string& address)
{
    std::error_code ec;
    connect(address, ec);
    // The host's or the check's words say more than the code alone (without
    // the code's own message at their end: system_error adds it).
    auto why = last_failure();
    if (const auto tail = ": " + ec.message(); why.ends_with(tail))
        why.resize(why.size() - tail.size());
    if (why.empty())
        throw_if(ec, "slotbus::connection::connect", address);
    throw_if(ec, why.c_str());
}

void connection::connect()
{
    connect(default_address());
}

void connection::run()
{
    if (auto* io = impl_->owned_context()) {
        io->restart();
        io->run();
    }
}

void connection::run_for(std::chrono::milliseconds limit)
{
    if (auto* io = impl_->owned_context()) {
        io->restart();
        io->run_for(limit);
    }
}

void connection::stop()
{
    if (auto* io = impl_->owned_context())
        io->stop();
}

void connection::close()
{
    impl_->close();
}

boost::asio::any_io_executor connection::get_executor() const
{
    return impl_->get_executor();
}

std::string connection::last_failure() const
{
    return impl_->last_failure();
}

std::uint32_t connection::max_record_size() const noexcept
{
    return std::max(impl_->max_record_size(), impl_->max_lane_record());
}

const std::string& connection::host_name() const noexcept
{
    return impl_->host_name();
}

const std::string& connection::plugin_name() const noexcept
{
    return impl_->plugin_name();
}

std::string plugin_token_from_environment()
{
    // Read once and taken out of the environment, so the plugin's own
    // children (a shell, a helper) do not inherit its identity.
    static const std::string token = [] {
        const char* value = std::getenv("SLOTBUS_TOKEN");
        std::string read = value ? value : "";
        ::unsetenv("SLOTBUS_TOKEN");
        return read;
    }();
    return token;
}

} // namespace slotbus
