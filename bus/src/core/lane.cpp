#include "lane.hpp"

#include "record.hpp"

#include <algorithm>

namespace slotbus::bus {

bool lane::fits(lane_descriptor d, std::uint32_t max_length, std::uint64_t& end) const noexcept
{
    const auto length = std::uint64_t{d.length};
    if (length == 0 || length > max_length || length > size())
        return false;
    // The one place it may be, and wholly in space no record in flight holds.
    if (d.position != lane_place(end, length, size()) || d.position + length > released_ + size())
        return false;
    end = d.position + length;
    return true;
}

std::span<const std::uint8_t> lane::take(lane_descriptor d)
{
    end_ = d.position + d.length;
    fifo_.push_back({d.position, end_});
    return {memory_->data() + d.position % size(), d.length};
}

void lane::release(std::uint64_t position) noexcept
{
    // Mostly the front: records of one writer leave its slots in order.
    auto it =
        std::lower_bound(fifo_.begin(), fifo_.end(), position,
                         [](const record_span& r, std::uint64_t p) { return r.position < p; });
    if (it == fifo_.end() || it->position != position)
        return;
    it->done = true;
    while (!fifo_.empty() && fifo_.front().done)
        fifo_.pop_front();
    const auto now = fifo_.empty() ? end_ : fifo_.front().position;
    if (now != released_) {
        released_ = now;
        if (listener_ && !retired)
            listener_->lane_released(*this);
    }
}

bool lane::take_release(std::uint64_t& position) noexcept
{
    if (released_ == told_)
        return false;
    position = told_ = released_;
    return true;
}

void record::destroy(record* r) noexcept
{
    lane* in = r->lane_;
    const auto position = r->position_;
    r->~record();
    ::operator delete(r);
    if (in) {
        in->release(position);
        intrusive_ptr_release(in);
    }
}

} // namespace slotbus::bus
