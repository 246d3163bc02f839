#include "record_queue.hpp"

#include <boost/endian/conversion.hpp>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace slotbus::bus {

record_queue::record_queue(record_queue&& other) noexcept
    : records_(std::move(other.records_)), chunks_(std::move(other.chunks_)),
      spare_(std::move(other.spare_)), head_(std::exchange(other.head_, 0)),
      bytes_(std::exchange(other.bytes_, 0))
{
    other.records_.clear();
    other.chunks_.clear();
}

record_queue& record_queue::operator=(record_queue&& other) noexcept
{
    if (this != &other) {
        this->~record_queue();
        new (this) record_queue(std::move(other));
    }
    return *this;
}

record_queue::~record_queue()
{
    for (const queued_record& q : records_) {
        if (q.is_shared)
            intrusive_ptr_release(q.shared());
        if (q.from)
            intrusive_ptr_release(q.from);
    }
}

record_queue::chunk& record_queue::room_for(std::size_t need)
{
    if (!chunks_.empty() && chunks_.back().end + need <= chunks_.back().capacity)
        return chunks_.back();
    const std::size_t wanted =
        std::max(need, bytes_ >= 4 * small_chunk ? large_chunk : small_chunk);
    if (chunks_.full())
        chunks_.set_capacity(std::max<std::size_t>(4, 2 * chunks_.capacity()));
    if (spare_.capacity >= wanted) {
        chunks_.push_back(std::exchange(spare_, {}));
        chunks_.back().end = 0;
    } else {
        chunks_.push_back({std::make_unique_for_overwrite<std::uint8_t[]>(wanted), wanted, 0});
    }
    if (chunks_.size() == 1)
        head_ = 0;
    return chunks_.back();
}

queued_record record_queue::entry(std::uint64_t seq, const std::uint8_t* data, std::uint32_t size,
                                  std::uint32_t missed_before, bool shared, origin* from) noexcept
{
    queued_record q;
    q.from = from;
    q.seq = seq;
    q.data = data;
    q.size = size;
    q.missed_before = std::min(missed_before, 0x7fffffffu) & 0x7fffffffu; // saturates
    q.is_shared = shared;
    return q;
}

void record_queue::push(std::uint64_t seq, std::uint32_t missed_before,
                        std::span<const std::uint8_t> bytes, record* shared, origin* from)
{
    const auto size = static_cast<std::uint32_t>(bytes.size());
    if (from)
        intrusive_ptr_add_ref(from);
    if (shared) {
        intrusive_ptr_add_ref(shared);
        add(entry(seq, reinterpret_cast<const std::uint8_t*>(shared), size, missed_before, true,
                  from));
        return;
    }
    chunk& c = room_for(4 + bytes.size());
    std::uint8_t* at = c.bytes.get() + c.end;
    boost::endian::store_little_u32(at, size);
    if (size)
        std::memcpy(at + 4, bytes.data(), size);
    c.end += 4 + size;
    bytes_ += 4 + size;
    add(entry(seq, at + 4, size, missed_before, false, from));
}

record_queue::list_push record_queue::push_list(std::uint64_t seq, std::uint32_t missed_before,
                                                std::span<const std::uint8_t> list,
                                                std::uint32_t limit, origin* from)
{
    // Checked as it is copied, so its lengths are walked once; a list that
    // fails a check is taken out again.
    const std::size_t records_before = records_.size(), chunks_before = chunks_.size();
    const std::size_t end_before = chunks_.empty() ? 0 : chunks_.back().end;
    list_push pushed;
    // The longest run of records that fits in the back chunk, copied at once.
    for (std::size_t at = 0; at < list.size();) {
        const std::size_t left = list.size() - at;
        const std::uint32_t first = left < 4 ? 0 : boost::endian::load_little_u32(list.data() + at);
        if (left < 4 || first > limit || first > left - 4)
            return undo_push(records_before, chunks_before, end_before);
        chunk& c = room_for(4 + first);
        std::uint8_t* to = c.bytes.get() + c.end;
        const std::size_t room = c.capacity - c.end;
        std::size_t end = at;
        while (end < list.size()) {
            const std::size_t rest = list.size() - end;
            if (rest < 4)
                return undo_push(records_before, chunks_before, end_before);
            const auto size = boost::endian::load_little_u32(list.data() + end);
            if (size > limit || size > rest - 4)
                return undo_push(records_before, chunks_before, end_before);
            if (end - at + 4 + size > room)
                break;
            add(entry(seq++, to + (end - at) + 4, size, std::exchange(missed_before, 0), false,
                      from));
            ++pushed.count;
            pushed.bytes += size;
            end += 4 + size;
        }
        std::memcpy(to, list.data() + at, end - at);
        c.end += end - at;
        bytes_ += end - at;
        at = end;
    }
    if (pushed.count == 0) // not a record list (see check_record_list)
        return undo_push(records_before, chunks_before, end_before);
    if (from) // one reference per record, taken at once
        from->refs += pushed.count;
    return pushed;
}

record_queue::list_push record_queue::undo_push(std::size_t records, std::size_t chunks,
                                                std::size_t back_end) noexcept
{
    records_.erase_end(records_.size() - records);
    while (chunks_.size() > chunks) {
        bytes_ -= chunks_.back().end;
        if (chunks_.back().capacity == large_chunk && !spare_.bytes)
            spare_ = std::move(chunks_.back());
        chunks_.pop_back();
    }
    if (!chunks_.empty()) {
        bytes_ -= chunks_.back().end - back_end;
        chunks_.back().end = back_end;
    }
    if (records_.empty())
        clear();
    return {};
}

std::uint64_t record_queue::pop_front(std::size_t n) noexcept
{
    // Counted in locals and stored once: through the members, each record
    // would wait for the previous one's store.
    std::uint64_t bytes = 0;
    std::size_t head = head_, log_bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const queued_record& q = records_[i];
        bytes += q.size;
        if (q.from)
            intrusive_ptr_release(q.from);
        if (q.is_shared) {
            intrusive_ptr_release(q.shared());
            continue;
        }
        head += 4 + q.size;
        log_bytes += 4 + q.size;
        chunk& c = chunks_.front();
        if (head == c.end) { // drained; what is left is in the chunks after it
            if (chunks_.size() == 1) {
                c.end = head = 0;
            } else {
                if (c.capacity == large_chunk && !spare_.bytes)
                    spare_ = std::move(c);
                chunks_.pop_front();
                head = 0;
            }
        }
    }
    head_ = head;
    bytes_ -= log_bytes;
    records_.erase_begin(n);
    if (records_.empty())
        clear();
    return bytes;
}

void record_queue::clear() noexcept
{
    // An empty queue keeps one small chunk at most: a host has many idle slots.
    if (!chunks_.empty() && chunks_.back().capacity == small_chunk) {
        chunks_.erase(chunks_.begin(), chunks_.end() - 1);
        chunks_.back().end = 0;
    } else {
        chunks_.clear();
    }
    spare_ = {};
    head_ = bytes_ = 0;
    // A ring grown by a burst is given back; a steady one regrows in a few doublings.
    if (records_.capacity() > small_ring)
        records_.set_capacity(0);
    if (chunks_.capacity() > 4)
        chunks_.set_capacity(4); // keeps the one small chunk, if any
}

} // namespace slotbus::bus
