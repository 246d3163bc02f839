#include "record_queue.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace slotbus::bus {

record_queue::record_queue(record_queue&& other) noexcept
    : chunks_(std::move(other.chunks_)), spare_(std::move(other.spare_)),
      head_(std::exchange(other.head_, 0)), last_(std::exchange(other.last_, 0)),
      count_(std::exchange(other.count_, 0)), bytes_(std::exchange(other.bytes_, 0))
{
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
    for_each([](const queued_record& q) {
        if (q.shared)
            intrusive_ptr_release(q.shared);
    });
}

void record_queue::push(std::uint64_t seq, std::uint32_t missed_before,
                        std::span<const std::uint8_t> bytes, record* shared)
{
    const std::size_t need = stride_of(shared ? 0 : bytes.size());
    if (chunks_.empty() || chunks_.back().end + need > chunks_.back().capacity) {
        const std::size_t wanted =
            std::max(need, bytes_ >= 4 * small_chunk ? large_chunk : small_chunk);
        if (spare_.capacity >= wanted) {
            chunks_.push_back(std::exchange(spare_, {}));
            chunks_.back().end = 0;
        } else {
            chunks_.push_back({std::make_unique_for_overwrite<std::byte[]>(wanted), wanted, 0});
        }
    }
    chunk& c = chunks_.back();
    auto* q = new (c.bytes.get() + c.end)
        queued_record{seq, static_cast<std::uint32_t>(bytes.size()), missed_before, shared};
    if (shared)
        intrusive_ptr_add_ref(shared);
    else if (!bytes.empty())
        std::memcpy(q + 1, bytes.data(), bytes.size());
    last_ = c.end;
    c.end += need;
    ++count_;
    bytes_ += need;
}

void record_queue::pop_front() noexcept
{
    chunk& c = chunks_.front();
    queued_record& q = at(c, head_);
    const std::size_t s = stride(q);
    if (q.shared)
        intrusive_ptr_release(q.shared);
    head_ += s;
    bytes_ -= s;
    if (--count_ == 0) {
        clear();
        return;
    }
    if (head_ == c.end) { // drained; the records left are in the chunks after it
        if (c.capacity == large_chunk && !spare_.bytes)
            spare_ = std::move(c);
        chunks_.pop_front();
        head_ = 0;
    }
}

void record_queue::clear() noexcept
{
    // An empty queue keeps one small chunk at most: a host has many idle slots.
    if (chunks_.back().capacity == small_chunk) {
        chunks_.erase(chunks_.begin(), chunks_.end() - 1);
        chunks_.back().end = 0;
    } else {
        chunks_.clear();
    }
    spare_ = {};
    head_ = last_ = bytes_ = 0;
}

} // namespace slotbus::bus
