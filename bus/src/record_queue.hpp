// A FIFO of records as a slot or a reader holds them. Small records are
// copied in, one after another, into chunks; a larger one is held by
// reference to its one shared copy.
#pragma once

#include "record.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>

namespace slotbus::bus {

/// One record in a queue; a small one's bytes follow it in the chunk.
struct queued_record {
    std::uint64_t seq = 0;           ///< arrival order within the slot
    std::uint32_t size = 0;          ///< of the record
    std::uint32_t missed_before = 0; ///< records dropped just ahead of this one
    record* shared = nullptr;        ///< null when the bytes follow

    [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept
    {
        return {shared ? shared->data() : reinterpret_cast<const std::uint8_t*>(this + 1), size};
    }
};

/// Why chunks: a 128-byte record costs one copy and a few stores here, where
/// a record of its own cost an allocation, a reference count and a node in a
/// std::deque, and the queue stays in a few contiguous blocks the cache likes.
/// Single-threaded: used only on the routing core's thread.
class record_queue {
public:
    /// Records up to this size are copied in; larger ones should come shared.
    static constexpr std::size_t inline_limit = 512;

    record_queue() = default;
    record_queue(record_queue&& other) noexcept;
    record_queue& operator=(record_queue&& other) noexcept;
    ~record_queue();

    /// Appends a record: its bytes are copied in, unless `shared` (the same
    /// bytes, allocated once) is given: then that is referenced instead.
    void push(std::uint64_t seq, std::uint32_t missed_before, std::span<const std::uint8_t> bytes,
              record* shared);
    /// Appends a copy of a record from another queue (a shared one stays shared).
    void push(const queued_record& q) { push(q.seq, q.missed_before, q.bytes(), q.shared); }

    [[nodiscard]] queued_record& front() noexcept { return at(chunks_.front(), head_); }
    [[nodiscard]] const queued_record& front() const noexcept { return at(chunks_.front(), head_); }
    [[nodiscard]] const queued_record& back() const noexcept { return at(chunks_.back(), last_); }
    void pop_front() noexcept;

    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return count_; }

    /// Calls f(const queued_record&) for each record, oldest first.
    template <class F> void for_each(F&& f) const
    {
        std::size_t at_offset = head_;
        for (const chunk& c : chunks_) {
            for (; at_offset < c.end; at_offset += stride(at(c, at_offset)))
                f(at(c, at_offset));
            at_offset = 0;
        }
    }

private:
    struct chunk {
        std::unique_ptr<std::byte[]> bytes;
        std::size_t capacity = 0;
        std::size_t end = 0; // one past the last record in it
    };
    // A queue that holds little stays in one small chunk; a busy one grows in
    // large chunks and keeps one spare, so it allocates once per chunk at most.
    static constexpr std::size_t small_chunk = 4 * 1024;
    static constexpr std::size_t large_chunk = 64 * 1024;

    static queued_record& at(const chunk& c, std::size_t offset) noexcept
    {
        return *reinterpret_cast<queued_record*>(c.bytes.get() + offset);
    }
    static std::size_t stride(const queued_record& q) noexcept
    {
        return stride_of(q.shared ? 0 : q.size);
    }
    static constexpr std::size_t stride_of(std::size_t inline_bytes) noexcept
    {
        return (sizeof(queued_record) + inline_bytes + alignof(queued_record) - 1) &
               ~(alignof(queued_record) - 1);
    }
    void clear() noexcept;

    std::deque<chunk> chunks_;
    chunk spare_;
    std::size_t head_ = 0; // offset of the front record in the front chunk
    std::size_t last_ = 0; // offset of the back record in the back chunk
    std::size_t count_ = 0;
    std::size_t bytes_ = 0; // strides of the records held
};

} // namespace slotbus::bus
