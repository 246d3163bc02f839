// A shared-memory lane as the host keeps it (docs/lanes.md): the memory one
// writer handle writes its large records into, and every word of control
// state about it — positions, what is in flight, who holds it — which lives
// here, in the host, never in the shared memory, so no peer can corrupt it.
#pragma once

#include "unique_fd.hpp"

#include "slotbus/protocol.hpp"

#include <boost/intrusive_ptr.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <system_error>
#include <vector>

namespace slotbus::bus {

using session_id = std::uint64_t;

/// A lane's memory at the host: made by the I/O layer (transport/shm: a
/// sealed memfd), so the routing core holds no system call. The host's own
/// view is read-only and its size can never change (sealed before anyone
/// else sees it), so reading it can never fault.
class lane_memory {
public:
    virtual ~lane_memory() = default;
    [[nodiscard]] virtual const std::uint8_t* data() const noexcept = 0;
    [[nodiscard]] virtual std::uint64_t size() const noexcept = 0;
    /// An fd for the writer to map read-write (before seal()).
    [[nodiscard]] virtual unique_fd writer_fd(std::error_code& ec) const = 0;
    /// A read-only fd for a reader (after seal(): the seal is the boundary,
    /// this a second layer).
    [[nodiscard]] virtual unique_fd reader_fd(std::error_code& ec) const = 0;
    /// From now on no writable mapping can be made, by anyone; the writer's
    /// one, made before, still writes.
    virtual void seal(std::error_code& ec) = 0;
};

/// Makes lane memory of `size` bytes, or sets ec.
using lane_maker =
    std::function<std::unique_ptr<lane_memory>(std::uint64_t size, std::error_code& ec)>;

class lane;
/// Told when a lane's writer may reuse more of it, and when a lane is gone.
class lane_listener {
public:
    virtual void lane_released(lane& l) = 0;
    virtual void lane_gone(lane& l) = 0;

protected:
    ~lane_listener() = default;
};

/// Single-threaded: used only on the routing core's thread. Counted: each
/// record in it holds one reference, and so does its writer handle.
class lane {
public:
    lane(std::uint32_t id, session_id writer, std::uint32_t handle,
         std::unique_ptr<lane_memory> memory, lane_listener* listener)
        : id_(id), writer_(writer), handle_(handle), memory_(std::move(memory)), listener_(listener)
    {
    }

    [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
    [[nodiscard]] session_id writer() const noexcept { return writer_; }
    [[nodiscard]] std::uint32_t handle() const noexcept { return handle_; }
    [[nodiscard]] std::uint64_t size() const noexcept { return memory_->size(); }
    [[nodiscard]] lane_memory& memory() noexcept { return *memory_; }

    /// The writer mapped it and it is sealed: descriptors into it are taken.
    bool sealed = false;
    /// Its writer handle is gone: no record comes into it any more.
    bool retired = false;
    /// Reader sessions sent an fd of it, told lane_close when it goes.
    std::vector<session_id> holders;

    /// True when `d` is the next record the writer may describe: where
    /// lane_place puts it after the last, 1 to max_length bytes, over no
    /// byte that a record still in flight holds. Checks only.
    [[nodiscard]] bool fits(lane_descriptor d, std::uint32_t max_length,
                            std::uint64_t& end) const noexcept;
    /// Takes the record `d` (checked by fits()); its bytes in the host's view.
    std::span<const std::uint8_t> take(lane_descriptor d);
    /// A record's last reference is gone: its space may be reused once
    /// every record before it is gone too.
    void release(std::uint64_t position) noexcept;
    /// Where the last record taken ends.
    [[nodiscard]] std::uint64_t end() const noexcept { return end_; }
    /// Every byte before it is free again.
    [[nodiscard]] std::uint64_t released() const noexcept { return released_; }
    /// The release position not told to the writer yet; false when none.
    bool take_release(std::uint64_t& position) noexcept;
    [[nodiscard]] std::size_t in_flight() const noexcept { return fifo_.size(); }
    /// The core is going: no one to tell any more.
    void detach() noexcept { listener_ = nullptr; }

    friend void intrusive_ptr_add_ref(lane* l) noexcept { ++l->refs_; }
    friend void intrusive_ptr_release(lane* l) noexcept
    {
        if (--l->refs_ == 0) {
            if (l->listener_)
                l->listener_->lane_gone(*l);
            delete l;
        }
    }

private:
    struct record_span {
        std::uint64_t position, end;
        bool done = false;
    };
    std::uint32_t id_;
    session_id writer_;
    std::uint32_t handle_;
    std::unique_ptr<lane_memory> memory_;
    lane_listener* listener_;
    std::uint32_t refs_ = 0;
    std::uint64_t end_ = 0;      // where the last record taken ended
    std::uint64_t released_ = 0; // every byte before it is free again
    std::uint64_t told_ = 0;     // the release position the writer heard of
    // Records taken and not yet gone, in position order. Bounded: each is
    // queued in some slot (budgets) or pushed to a reader (windows).
    std::deque<record_span> fifo_;
};
using lane_ptr = boost::intrusive_ptr<lane>;

} // namespace slotbus::bus
