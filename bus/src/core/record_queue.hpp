// A FIFO of records as a slot or a reader holds them. Small records are
// copied into a log in their wire form (length, then bytes), so records that
// were queued one after another go out again as one span; a larger one is
// held by reference to its one shared copy.
#pragma once

#include "origin.hpp"
#include "record.hpp"

#include <boost/circular_buffer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace slotbus::bus {

/// One record in a queue.
struct queued_record {
    std::uint64_t seq = 0; ///< arrival order within the slot
    /// In the queue's log; for a shared record, the record itself (see shared()).
    const std::uint8_t* data = nullptr;
    std::uint32_t size = 0;               ///< of the record
    std::uint32_t missed_before : 31 = 0; ///< records dropped just ahead of this one
    std::uint32_t is_shared : 1 = 0;
    origin* from = nullptr; ///< who wrote it, to which name (one reference held)

    [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept
    {
        return is_shared ? shared()->bytes() : std::span<const std::uint8_t>{data, size};
    }
    /// The one shared copy, or null when the bytes are in the log.
    [[nodiscard]] record* shared() const noexcept
    {
        return is_shared ? reinterpret_cast<record*>(const_cast<std::uint8_t*>(data)) : nullptr;
    }
};

/// Why a log: a 128-byte record costs one copy and a few stores here, and a
/// run of them, as a write frame brought them, is copied in and out whole.
/// The log is a few contiguous blocks the cache likes.
/// Single-threaded: used only on the routing core's thread.
class record_queue {
public:
    /// Records up to this size are copied in; larger ones should come shared.
    static constexpr std::size_t inline_limit = 512;

    record_queue() = default;
    record_queue(record_queue&& other) noexcept;
    record_queue& operator=(record_queue&& other) noexcept;
    ~record_queue();

    /// Appends a record from `from`: its bytes are copied in, unless
    /// `shared` (the same bytes, allocated once) is given: then that is
    /// referenced instead.
    void push(std::uint64_t seq, std::uint32_t missed_before, std::span<const std::uint8_t> bytes,
              record* shared, origin* from);
    /// Appends a copy of a record from another queue (a shared one stays shared).
    void push(const queued_record& q)
    {
        push(q.seq, q.missed_before, q.bytes(), q.shared(), q.from);
    }
    /// What push_list queued: nothing (count 0) when the list was refused.
    struct list_push {
        std::uint32_t count = 0;
        std::uint64_t bytes = 0; ///< in its records, lengths not counted
    };
    /// Appends a whole record list, numbered from `seq`, the first carrying
    /// `missed_before`; `limit` (at most inline_limit) is the largest record
    /// it takes. Refuses, queuing none of it, a list that is not one (see
    /// check_record_list) or holds a larger record.
    [[nodiscard]] list_push push_list(std::uint64_t seq, std::uint32_t missed_before,
                                      std::span<const std::uint8_t> list, std::uint32_t limit,
                                      origin* from);

    [[nodiscard]] queued_record& front() noexcept { return records_.front(); }
    [[nodiscard]] const queued_record& front() const noexcept { return records_.front(); }
    [[nodiscard]] const queued_record& back() const noexcept { return records_.back(); }
    [[nodiscard]] const queued_record& operator[](std::size_t i) const noexcept
    {
        return records_[i];
    }
    /// Removes the first n records (n <= size()); returns their bytes.
    std::uint64_t pop_front(std::size_t n = 1) noexcept;

    [[nodiscard]] bool empty() const noexcept { return records_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return records_.size(); }

    /// True when `next` directly follows `q` in the log: their wire forms
    /// (length and bytes) make one span, of one origin.
    [[nodiscard]] static bool adjacent(const queued_record& q, const queued_record& next) noexcept
    {
        return !q.is_shared && !next.is_shared && next.data == q.data + q.size + 4 &&
               next.from == q.from;
    }
    /// The wire form of the records from `first` to `last`, adjacent all along.
    [[nodiscard]] static std::span<const std::uint8_t> wire(const queued_record& first,
                                                            const queued_record& last) noexcept
    {
        return {first.data - 4, last.data + last.size};
    }

private:
    struct chunk {
        std::unique_ptr<std::uint8_t[]> bytes;
        std::size_t capacity = 0;
        std::size_t end = 0; // one past the last byte written
    };
    // A queue that holds little stays in one small chunk; a busy one grows in
    // large chunks and keeps one spare, so it allocates once per chunk at most.
    static constexpr std::size_t small_chunk = 4 * 1024;
    static constexpr std::size_t large_chunk = 64 * 1024;
    static constexpr std::size_t small_ring = 512; // entries an empty queue may keep

    /// Room for `need` more bytes at the end of the back chunk.
    chunk& room_for(std::size_t need);
    static queued_record entry(std::uint64_t seq, const std::uint8_t* data, std::uint32_t size,
                               std::uint32_t missed_before, bool shared, origin* from) noexcept;
    /// Takes a refused push_list out again: back to `records` entries and
    /// `chunks` chunks, the last of them ending at `back_end`.
    list_push undo_push(std::size_t records, std::size_t chunks, std::size_t back_end) noexcept;
    void add(const queued_record& q)
    {
        if (records_.full())
            records_.set_capacity(std::max<std::size_t>(64, 2 * records_.capacity()));
        records_.push_back(q);
    }
    void clear() noexcept;

    // A ring, not a deque: indexing and pushing cost a compare and an add,
    // and an idle queue holds no block (see clear()).
    boost::circular_buffer<queued_record> records_;
    // A ring too: a std::deque allocates ~600 bytes even empty, and a host
    // has two queues per slot with a reader, most of them idle.
    boost::circular_buffer<chunk> chunks_;
    chunk spare_;
    std::size_t head_ = 0;  // where the front record's bytes start in the front chunk
    std::size_t bytes_ = 0; // log bytes held
};

} // namespace slotbus::bus
