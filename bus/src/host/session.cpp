#include "session.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

#include "service/log.hpp"

namespace slotbus::bus {

namespace asio = boost::asio;

session::session(session_owner& owner, detail::byte_stream stream, session_id id)
    : owner_(owner), stream_(std::move(stream)), id_(id)
{
}

void session::start()
{
    read();
}

void session::read()
{
    // Past its bound, a held-back connection is not read at all: then only a
    // client that ignores the SDK's write window can wait on itself.
    const bool held_full = held_bytes_ > owner_.max_held();
    if (reading_ || held_full || closing_ || shut_ || output_full())
        return;
    const auto room = in_.prepare(owner_.routing().limits().max_frame_size());
    reading_ = true;
    stream_.async_read_some(
        asio::buffer(room.data(), room.size()),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
            self->reading_ = false;
            if (self->shut_)
                return;
            if (ec) {
                const bool client_closed =
                    ec == asio::error::eof || ec == asio::error::connection_reset;
                self->shut(client_closed ? "closed by the client" : "read error: " + ec.message());
                return;
            }
            self->in_.commit(n);
            self->process();
        });
}

namespace {
// Frames that may overtake a held write: they touch no slot a write fills.
bool commutes(frame_type type)
{
    return type == frame_type::read_report || type == frame_type::ping;
}
} // namespace

void session::process()
{
    core& c = owner_.routing();
    const std::size_t max_frame = c.limits().max_frame_size();
    // What was held back goes first, in order, until a write is held again.
    while (!closing_ && holding()) {
        const auto& chunk = held_.front();
        const auto found =
            decode_frame({chunk.data() + held_begin_, chunk.size() - held_begin_}, max_frame);
        const auto result = c.feed(id_, found.frame);
        if (result == feed_result::blocked)
            break;
        held_begin_ += found.size;
        held_bytes_ -= found.size;
        if (held_begin_ == held_.front().size()) { // under steady back-pressure this
            held_.pop_front();                     // is what keeps the queue bounded
            held_begin_ = 0;
        }
        closing_ = result == feed_result::close;
    }
    while (!closing_) {
        auto found = in_.next(max_frame);
        if (found.status == decoded_frame::need_more)
            break;
        if (found.status == decoded_frame::invalid) {
            warn("connection ", id_, ": ", found.why, "; closing it");
            c.reject(id_, found.why);
            closing_ = true;
            break;
        }
        const auto bytes = in_.unread().first(found.size);
        const bool behind_held = holding() && !commutes(found.frame.type);
        const auto result = behind_held ? feed_result::blocked : c.feed(id_, found.frame);
        if (result == feed_result::blocked) // kept, in order, for resume()
            hold(bytes);
        in_.consume(found.size);
        if (result == feed_result::close) {
            closing_ = true;
            warn("connection ", id_, ": protocol error; closing it");
        }
    }
    c.end_batch(id_);
    owner_.flush_touched();
    read();
}

void session::hold(byte_span frame)
{
    constexpr std::size_t chunk_size = 64 * 1024;
    if (held_.empty() || held_.back().size() + frame.size() > chunk_size) {
        held_.emplace_back();
        held_.back().reserve(std::max(chunk_size, frame.size()));
    }
    held_.back().insert(held_.back().end(), frame.begin(), frame.end());
    held_bytes_ += frame.size();
}

void session::resume()
{
    if (shut_)
        return;
    // Posted, so a drain on one connection never runs another's frames inside it.
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
        if (!self->shut_)
            self->process();
    });
}

bool session::output_full() const
{
    // writing_ holds only what is under way: on_written empties it.
    return writing_.size() + owner_.routing().outbox(id_).size() >
           owner_.routing().limits().max_outbox;
}

void session::flush()
{
    if (write_active_ || shut_)
        return;
    if (!owner_.routing().has_output(id_)) {
        if (closing_)
            shut("closed after a protocol error");
        return;
    }
    owner_.routing().take_output(id_, writing_, writing_fds_);
    fds_sent_ = 0;
    write_active_ = true;
    written_ = 0;
    last_progress_ = clock::now();
    write_some();
}

void session::write_some()
{
    if (fds_sent_ < writing_fds_.size() && writing_fds_[fds_sent_].offset == written_)
        return send_fd();
    // Up to the next byte that carries an fd, which goes alone (send_fd).
    const std::size_t until =
        fds_sent_ < writing_fds_.size() ? writing_fds_[fds_sent_].offset : writing_.size();
    // Piece by piece rather than asio::async_write, so that each piece the
    // socket takes counts as progress (see stalled()).
    stream_.async_write_some(
        asio::buffer(writing_.data() + written_, until - written_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
            self->written_ += n;
            self->last_progress_ = clock::now();
            if (!ec && !self->shut_ && self->written_ < self->writing_.size())
                self->write_some();
            else
                self->on_written(ec);
        });
}

void session::send_fd()
{
    // Boost.Asio 1.81 has no ancillary data: sendmsg on the socket itself,
    // which Asio keeps non-blocking; when it is full, wait until it is not.
    const int fd = writing_fds_[fds_sent_].fd.get();
    const std::size_t until =
        fds_sent_ + 1 < writing_fds_.size() ? writing_fds_[fds_sent_ + 1].offset : writing_.size();
    iovec bytes{writing_.data() + written_, until - written_};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &bytes;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    const auto n = ::sendmsg(stream_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        stream_.async_wait_writable(
            [self = shared_from_this()](const boost::system::error_code& ec) {
                if (ec || self->shut_)
                    return self->on_written(ec);
                self->send_fd();
            });
        return;
    }
    if (n < 0)
        return on_written({errno, boost::system::system_category()});
    // Sent with its first byte: the host's copy of the fd goes now.
    writing_fds_[fds_sent_++].fd.reset();
    written_ += static_cast<std::size_t>(n);
    last_progress_ = clock::now();
    if (written_ < writing_.size())
        write_some();
    else
        on_written({});
}

bool session::stalled(clock::time_point now, clock::duration limit) const
{
    return write_active_ && output_full() && now - last_progress_ > limit;
}

void session::on_written(const boost::system::error_code& ec)
{
    write_active_ = false;
    writing_.clear(); // sent: it no longer counts toward the outbox (its capacity is kept)
    writing_fds_.clear();
    if (shut_)
        return;
    if (ec) {
        // A client that closes with output unread makes the next write fail.
        shut(ec == asio::error::broken_pipe || ec == asio::error::connection_reset
                 ? "closed by the client"
                 : "write error: " + ec.message());
        return;
    }
    flush();
    read(); // input may have been paused while output piled up
}

void session::shut(std::string_view reason)
{
    if (shut_)
        return;
    shut_ = true;
    stream_.close();
    owner_.forget(id_, reason);
}

void refuse_connection(detail::byte_stream& stream, std::string_view why)
{
    // Small enough for any socket buffer: written at once, or not at all.
    byte_buffer frame;
    encode(frame, fatal_frame{static_cast<std::uint32_t>(error::req_not_accep), why});
    stream.write_now(asio::buffer(frame));
    stream.close();
}

} // namespace slotbus::bus
