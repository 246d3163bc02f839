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
    for (const queued_record& q : records_)
        if (q.is_shared)
            intrusive_ptr_release(q.shared());
}

record_queue::chunk& record_queue::room_for(std::size_t need)
{
    if (!chunks_.empty() && chunks_.back().end + need <= chunks_.back().capacity)
        return chunks_.back();
    const std::size_t wanted =
        std::max(need, bytes_ >= 4 * small_chunk ? large_chunk : small_chunk);
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
                                  std::uint32_t missed_before, bool shared) noexcept
{
    queued_record q;
    q.seq = seq;
    q.data = data;
    q.size = size;
    q.missed_before = std::min(missed_before, 0x7fffffffu) & 0x7fffffffu; // saturates
    q.is_shared = shared;
    return q;
}

void record_queue::push(std::uint64_t seq, std::uint32_t missed_before,
                        std::span<const std::uint8_t> bytes, record* shared)
{
    const auto size = static_cast<std::uint32_t>(bytes.size());
    if (shared) {
        intrusive_ptr_add_ref(shared);
        add(entry(seq, shared->data(), size, missed_before, true));
        return;
    }
    chunk& c = room_for(4 + bytes.size());
    std::uint8_t* at = c.bytes.get() + c.end;
    boost::endian::store_little_u32(at, size);
    if (size)
        std::memcpy(at + 4, bytes.data(), size);
    c.end += 4 + size;
    bytes_ += 4 + size;
    add(entry(seq, at + 4, size, missed_before, false));
}

void record_queue::push_list(std::uint64_t seq, std::uint32_t missed_before,
                             std::span<const std::uint8_t> list)
{
    // The longest run of records that fits in the back chunk, copied at once.
    for (std::size_t at = 0; at < list.size();) {
        const std::size_t first = 4 + boost::endian::load_little_u32(list.data() + at);
        chunk& c = room_for(first);
        std::uint8_t* to = c.bytes.get() + c.end;
        std::size_t end = at;
        while (end < list.size()) {
            const auto size = boost::endian::load_little_u32(list.data() + end);
            if (c.end + (end - at) + 4 + size > c.capacity)
                break;
            add(entry(seq++, to + (end - at) + 4, size, std::exchange(missed_before, 0), false));
            end += 4 + size;
        }
        std::memcpy(to, list.data() + at, end - at);
        c.end += end - at;
        bytes_ += end - at;
        at = end;
    }
}

void record_queue::pop_front() noexcept
{
    const queued_record q = records_.front();
    records_.pop_front();
    if (q.is_shared) {
        intrusive_ptr_release(q.shared());
    } else {
        head_ += 4 + q.size;
        bytes_ -= 4 + q.size;
        chunk& c = chunks_.front();
        if (head_ == c.end) { // drained; what is left is in the chunks after it
            if (chunks_.size() == 1) {
                c.end = head_ = 0;
            } else {
                if (c.capacity == large_chunk && !spare_.bytes)
                    spare_ = std::move(c);
                chunks_.pop_front();
                head_ = 0;
            }
        }
    }
    if (records_.empty())
        clear();
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
}

} // namespace slotbus::bus
