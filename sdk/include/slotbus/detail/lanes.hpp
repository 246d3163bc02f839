// Not API: the shared-memory lanes of one client connection (docs/lanes.md).
// The host owns every word of a lane's control state; what this end keeps
// is its own view of it: where its writer handles' records go next and how
// far the host released them, and the readers' mappings.
#pragma once

#include "slotbus/export.hpp"
#include "slotbus/protocol.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>

namespace slotbus::detail {

/// A lane's memory mapped here: a writer's read-write, a reader's read-only.
class SLOTBUS_API lane_mapping {
public:
    /// Maps the memfd `fd` (the caller closes it) of `size` bytes. A
    /// reader's must be sealed against growing, shrinking and any new
    /// writable mapping, so no other process can change or fault it.
    static std::shared_ptr<lane_mapping> map(int fd, std::uint64_t size, bool writer,
                                             boost::system::error_code& ec);
    lane_mapping(std::uint8_t* data, std::uint64_t size) noexcept : data_(data), size_(size) {}
    lane_mapping(const lane_mapping&) = delete;
    lane_mapping& operator=(const lane_mapping&) = delete;
    ~lane_mapping();

    [[nodiscard]] std::uint8_t* data() const noexcept { return data_; }
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    /// The bytes of a record the host described, or an empty span when the
    /// descriptor does not lie wholly inside the lane.
    [[nodiscard]] std::span<const std::uint8_t> at(lane_descriptor d) const noexcept;

private:
    std::uint8_t* data_;
    std::uint64_t size_;
};

/// The lanes of a connection's writer handles. Thread-safe: a write copies
/// its records into its lane on the thread that writes, and its descriptor
/// frame is handed on in the same order; the connection's thread hears of
/// opens, releases and closes.
class SLOTBUS_API lane_writers {
public:
    /// What the welcome said (0: no lanes on this connection).
    void enable(std::uint32_t threshold, std::uint32_t max_record) noexcept;
    [[nodiscard]] std::uint32_t threshold() const noexcept
    {
        return threshold_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t max_record() const noexcept
    {
        return max_record_.load(std::memory_order_relaxed);
    }
    /// True when these records go by lane where they can: each at least the
    /// threshold, none over the lane's cap.
    [[nodiscard]] bool wants(std::span<const boost::asio::const_buffer> records) const noexcept;

    enum class placement {
        placed, ///< in the lane: `send` was called with the descriptor frame
        socket, ///< no lane for them now: they take the socket (they fit it)
        wait,   ///< no room, or writes wait before them: they wait (counted) for a lane event
                ///< (one that would fit the socket waits only while the lane moves: see stall)
        refused ///< too large for the socket, and the host gave no lane
    };
    /// Copies the records into the handle's lane and calls send(frame,
    /// generation) with their write_lane (or post_lane) frame, under the
    /// lanes' lock, so the frames leave in the order their records were
    /// placed. Sets `ask` when a lane_request for the handle should go now
    /// (once). A write told to wait is counted until a draining call
    /// (`draining`: the front of the handle's waiting writes, on the
    /// connection's thread) places it or sends it by the socket.
    template <class Send>
    placement place(std::uint32_t handle, std::span<const boost::asio::const_buffer> records,
                    bool post, bool fits_socket, bool draining, bool& ask, Send&& send);
    /// For a write that takes the socket: true (and counted as waiting) when
    /// writes of the handle wait before it, so it must wait behind them.
    bool must_wait(std::uint32_t handle);
    /// A waiting write left without going through place() (its connection failed).
    void stop_waiting(std::uint32_t handle);
    /// No release came for `lane_wait` while writes waited: every lane with
    /// waiting writes is stalled, and its records that fit the socket take
    /// the socket until its next release. Returns whether any lane was.
    bool stall();
    /// How long a write that fits the socket waits for lane room at most,
    /// counted from the last release: a reader that keeps up frees room far
    /// sooner; one that stopped must not hold the writer (docs/lanes.md).
    static constexpr auto lane_wait = std::chrono::milliseconds(25);
    /// Bumped by reset(): a frame placed before it names a lane of a gone connection.
    [[nodiscard]] std::uint64_t generation() const noexcept
    {
        return generation_.load(std::memory_order_relaxed);
    }

    // ---- on the connection's thread ---------------------------------------------------

    /// The host answered a lane_request: the lane, mapped (null: refused).
    /// A larger lane replaces the handle's: returns the old one when
    /// lane_closed may be sent for it now (no frame of it on its way), or 0.
    std::uint32_t opened(std::uint32_t handle, std::uint32_t lane,
                         std::shared_ptr<lane_mapping> memory);
    /// The host freed the lane up to `position`.
    void released(std::uint32_t lane, std::uint64_t position);
    /// The host closed the lane: no record goes in any more. True when
    /// lane_closed may be sent now (no frame of it still on its way out).
    bool closing(std::uint32_t lane);
    /// A descriptor frame of `handle` went into the output. Returns the
    /// lane to send lane_closed for now, or 0.
    std::uint32_t sent(std::uint32_t handle);
    /// The handle is closed here: its lane is forgotten.
    void forget(std::uint32_t handle);
    /// The connection is gone: every lane with it; waiting writers go the
    /// socket's way.
    void reset();
    /// The lane a handle writes into now, or 0 (for tests and stats).
    [[nodiscard]] std::uint32_t lane_of(std::uint32_t handle) const;
    /// The most bytes of one batch placed at once for `handle`: half its lane
    /// (the other half still being read), or 4 MiB before it has one.
    /// A larger batch would never find room, so it goes in pieces.
    [[nodiscard]] std::uint64_t piece_bytes(std::uint32_t handle) const;

private:
    struct writer_lane {
        std::uint32_t id = 0; // 0: none yet
        std::shared_ptr<lane_mapping> memory;
        std::uint64_t end = 0;        // where the last record placed ends
        std::uint64_t released = 0;   // every byte before it is ours again
        std::uint32_t in_transit = 0; // descriptor frames placed, not yet in the output
        bool asked = false;           // a lane_request is out
        bool refused = false;         // the host said no: the socket, until the next connection
        bool closing = false;         // the host closed it: no new records
        bool grow_refused = false;    // no larger lane: a record over its size takes the socket
        bool stalled = false;         // no release for lane_wait: no waiting for room till one
        std::uint32_t retiring = 0;   // a lane a larger one replaced, until its frames are out
        std::uint32_t retiring_in_transit = 0;
        std::uint32_t waiting =
            0; // writes of the handle waiting, in order, on the connection's thread
    };
    writer_lane* lane_by_id(std::uint32_t lane);

    std::atomic<std::uint32_t> threshold_{0};
    std::atomic<std::uint32_t> max_record_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<std::uint32_t> waiting_{0}; // in all: must_wait() takes no lock when 0
    mutable std::mutex mutex_;
    std::unordered_map<std::uint32_t, writer_lane> handles_;
};

template <class Send>
lane_writers::placement
lane_writers::place(std::uint32_t handle, std::span<const boost::asio::const_buffer> records,
                    bool post, bool fits_socket, bool draining, bool& ask, Send&& send)
{
    std::lock_guard lock(mutex_);
    writer_lane& w = handles_[handle];
    const auto leave = [&](placement p) {
        if (draining && p != placement::wait) {
            --w.waiting;
            waiting_.fetch_sub(1, std::memory_order_relaxed);
        } else if (!draining && p == placement::wait) {
            ++w.waiting;
            waiting_.fetch_add(1, std::memory_order_relaxed);
        }
        return p;
    };
    if (threshold() == 0 || w.refused)
        return leave(fits_socket ? placement::socket : placement::refused);
    if (!draining && w.waiting != 0)
        return leave(placement::wait);
    if (w.id == 0 && !w.asked && !w.closing)
        ask = w.asked = true;
    if (w.id != 0 && !w.closing) {
        const auto size = w.memory->size();
        bool larger = false; // than the lane holds: a larger lane is asked for
        for (const auto& r : records)
            larger = larger || lane_place(0, r.size(), size) + r.size() > size;
        if (larger) {
            if (!w.asked && !w.grow_refused)
                ask = w.asked = true;
            return leave(fits_socket      ? placement::socket
                         : w.grow_refused ? placement::refused
                                          : placement::wait);
        }
        // Each record where the host expects it, over no byte not yet released.
        std::uint64_t end = w.end;
        bool room = true;
        for (const auto& r : records) {
            const auto at = lane_place(end, r.size(), size);
            room = room && at + r.size() <= w.released + size;
            end = at + r.size();
        }
        if (room) {
            byte_buffer frame;
            record_list_builder builder(post ? frame_type::post_lane : frame_type::write_lane);
            for (const auto& r : records) {
                const auto at = lane_place(w.end, r.size(), size);
                std::memcpy(w.memory->data() + at % size, r.data(), r.size());
                builder.append_descriptor(frame, handle, {at, static_cast<std::uint32_t>(r.size())},
                                          0, w.id);
                w.end = at + r.size();
            }
            ++w.in_transit;
            send(std::move(frame), generation());
            return leave(placement::placed);
        }
    }
    // Full, or not made yet: while the lane moves (or comes), waiting beats
    // the socket's two copies; once it stalls, what fits the socket takes it.
    return leave(fits_socket && (w.closing || w.stalled) ? placement::socket : placement::wait);
}

} // namespace slotbus::detail
