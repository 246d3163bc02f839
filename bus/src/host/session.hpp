// One client connection, over whichever byte stream a transport accepted it
// on (Unix, TCP, TLS): reads frames in batches into the core, writes what
// the core queued for it with one gather-free write per batch.
#pragma once

#include "slotbus/detail/byte_stream.hpp"

#include <chrono>
#include <deque>
#include <memory>

#include "core/core.hpp"

namespace slotbus::bus {

/// What a session needs of the host that owns it, and no more.
class session_owner {
public:
    [[nodiscard]] virtual core& routing() noexcept = 0;
    /// Bytes of a client's frames kept behind a full slot before its input pauses.
    [[nodiscard]] virtual std::size_t max_held() const noexcept = 0;
    /// Frames were fed: hand new output to the sessions, resume held-back ones.
    virtual void flush_touched() = 0;
    /// The session has closed (why, for "connections"): it leaves the core
    /// and the host's tables.
    virtual void forget(session_id id, std::string_view reason) = 0;

protected:
    ~session_owner() = default;
};

/// Turns a connection away before it costs anything: a fatal frame
/// (`req_not_accep`) saying why, written at once or not at all, then closed.
void refuse_connection(detail::byte_stream& stream, std::string_view why);

/// Single-threaded: lives on the owner's io_context thread.
class session : public std::enable_shared_from_this<session> {
public:
    session(session_owner& owner, detail::byte_stream stream, session_id id);

    void start();
    /// Sends what the core queued, if no write is under way.
    void flush();
    /// A slot this session was held back on has room again: feed the held frames.
    void resume();
    /// Closes the socket now and leaves the core; `reason` is what the
    /// host's "connections" answer shows.
    void shut(std::string_view reason);

    [[nodiscard]] session_id id() const noexcept { return id_; }
    using clock = std::chrono::steady_clock;
    /// When it connected, for the hello deadline.
    [[nodiscard]] clock::time_point connected_at() const noexcept { return connected_at_; }
    /// Its output is over the bound and none of it went for `limit`: a peer
    /// that stopped reading.
    [[nodiscard]] bool stalled(clock::time_point now, clock::duration limit) const;

private:
    void read();
    void process();
    void write_some();
    void on_written(const boost::system::error_code& ec);
    [[nodiscard]] bool output_full() const;

    session_owner& owner_;
    detail::byte_stream stream_;
    session_id id_;
    frame_buffer in_;
    byte_buffer writing_;
    std::size_t written_ = 0;              // of writing_, sent
    std::vector<attached_fd> writing_fds_; // fds that go with bytes of writing_ (lanes)
    std::size_t fds_sent_ = 0;             // of writing_fds_
    /// Sends the bytes from written_ with the fd that goes with the first
    /// of them (SCM_RIGHTS), when the socket takes them.
    void send_fd();
    clock::time_point connected_at_ = clock::now();
    clock::time_point last_progress_ = connected_at_; // the socket last took bytes
    // A write held back by a full slot, and every frame after it but the ones
    // that commute (read reports, pings), wait here in arrival order. Applying
    // read reports meanwhile is what keeps two connections that feed each
    // other's full slots from waiting on each other.
    // In chunks of about one read each, so what was fed is dropped a chunk at
    // a time and nothing is ever moved.
    std::deque<byte_buffer> held_;
    std::size_t held_begin_ = 0; // in the front chunk
    std::size_t held_bytes_ = 0; // not fed yet, in all chunks
    [[nodiscard]] bool holding() const noexcept { return held_bytes_ > 0; }
    void hold(byte_span frame);
    bool reading_ = false;
    bool write_active_ = false;
    bool closing_ = false;
    bool shut_ = false;
};

} // namespace slotbus::bus
