#include "session.hpp"

#include "log.hpp"
#include "server.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <cstring>

namespace slotbus::bus {

namespace asio = boost::asio;

namespace {
constexpr std::size_t initial_buffer = 64 * 1024;
}

session::session(server& owner, asio::local::stream_protocol::socket socket, session_id id)
    : owner_(owner), socket_(std::move(socket)), id_(id), in_(initial_buffer)
{
}

void session::start()
{
    read();
}

void session::read()
{
    if (reading_ || blocked_ || closing_ || shut_ || output_full())
        return;
    // Make room: move a partial frame to the front, and grow for a frame
    // larger than the buffer (its length was checked against the limit).
    if (begin_ == end_)
        begin_ = end_ = 0;
    if (end_ == in_.size() || begin_ > in_.size() / 2) {
        std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (end_ - begin_ >= 4) {
        std::uint32_t length = 0;
        std::memcpy(&length, in_.data() + begin_, 4);
        const std::size_t need = 4 + std::size_t{boost::endian::little_to_native(length)};
        if (need > in_.size() && need <= owner_.core_.limits().max_frame_size() + 4)
            in_.resize(need);
    }
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(in_.data() + end_, in_.size() - end_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
            self->reading_ = false;
            if (self->shut_)
                return;
            if (ec) {
                self->shut();
                return;
            }
            self->end_ += n;
            self->process();
        });
}

void session::process()
{
    core& c = owner_.core_;
    const std::size_t max_frame = c.limits().max_frame_size();
    while (!closing_) {
        auto found = decode_frame({in_.data() + begin_, end_ - begin_}, max_frame);
        if (found.status == decoded_frame::need_more)
            break;
        if (found.status == decoded_frame::invalid) {
            log("connection ", id_, ": ", found.why, "; closing it");
            c.reject(id_, found.why);
            closing_ = true;
            break;
        }
        const auto result = c.feed(id_, found.frame);
        if (result == feed_result::blocked) {
            blocked_ = true; // the frame stays; resume() feeds it again
            break;
        }
        begin_ += found.size;
        if (result == feed_result::close) {
            closing_ = true;
            log("connection ", id_, ": protocol error; closing it");
        }
    }
    c.end_batch(id_);
    owner_.flush_touched();
    read();
}

void session::resume()
{
    if (!blocked_ || shut_)
        return;
    blocked_ = false;
    // Posted, so a drain on one connection never runs another's frames inside it.
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
        if (!self->shut_ && !self->blocked_)
            self->process();
    });
}

bool session::output_full() const
{
    return writing_.size() + owner_.core_.outbox(id_).size() > owner_.options_.max_outbox;
}

void session::flush()
{
    if (write_active_ || shut_)
        return;
    auto& outbox = owner_.core_.outbox(id_);
    if (outbox.empty()) {
        if (closing_)
            shut();
        return;
    }
    writing_.clear();
    writing_.swap(outbox);
    write_active_ = true;
    asio::async_write(socket_, asio::buffer(writing_),
                      [self = shared_from_this()](const boost::system::error_code& ec,
                                                  std::size_t) { self->on_written(ec); });
}

void session::on_written(const boost::system::error_code& ec)
{
    write_active_ = false;
    if (shut_)
        return;
    if (ec) {
        shut();
        return;
    }
    flush();
    read(); // input may have been paused while output piled up
}

void session::shut()
{
    if (shut_)
        return;
    shut_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    owner_.forget(id_);
}

} // namespace slotbus::bus
