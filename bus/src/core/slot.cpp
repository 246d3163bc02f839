#include "slot.hpp"

#include <algorithm>

namespace slotbus::bus {

void slot::add_reader(reader* r)
{
    // A second reader: what the first was pushed moves to its own in_flight,
    // so the queue holds only what waits.
    if (solo_pushed_ != 0) {
        auto& first = readers_.front()->in_flight();
        for (; solo_pushed_ != 0; --solo_pushed_) {
            first.push(queue_.front());
            queue_.pop_front();
        }
    }
    readers_.push_back(r);
}

void slot::remove_reader(reader* r)
{
    std::erase(readers_, r);
    // A solo reader's records are at the front of the queue already.
    solo_pushed_ = 0;
    if (!r->nothing_in_flight()) {
        record_queue merged;
        auto& returned = r->in_flight();
        while (!returned.empty() || !queue_.empty()) {
            const bool from_returned =
                !returned.empty() && (queue_.empty() || returned.front().seq < queue_.front().seq);
            auto& from = from_returned ? returned : queue_;
            merged.push(from.front());
            from.pop_front();
        }
        queue_ = std::move(merged);
    }
    r->pushed = 0;
    r->pushed_bytes = 0;
    r->target = nullptr;
}

bool slot::make_room(std::size_t wire)
{
    // Never solo (see solo()): everything in the queue waits.
    std::uint32_t gap = 0;
    while (!has_room_for(wire) && !queue_.empty()) {
        auto& oldest = queue_.front();
        gap += 1 + oldest.missed_before;
        unread_bytes_ -= oldest.size;
        --unread_;
        ++dropped_;
        queue_.pop_front();
    }
    // The reader hears of the gap before whatever comes next, in order.
    if (queue_.empty())
        pending_gap_ += gap;
    else
        queue_.front().missed_before =
            std::min<std::uint32_t>(queue_.front().missed_before + gap, 0x7fffffff) & 0x7fffffff;
    return has_room_for(wire);
}

bool slot::consume(reader& r, std::uint32_t n)
{
    if (n > r.pushed)
        return false;
    // A solo reader's records are the front of the queue; else its own.
    const bool at_front = solo_pushed_ != 0;
    auto& held = at_front ? queue_ : r.in_flight();
    const std::uint64_t bytes = held.pop_front(n);
    if (at_front)
        solo_pushed_ -= n;
    r.pushed -= n;
    r.pushed_bytes -= bytes;
    unread_ -= n;
    unread_bytes_ -= bytes;
    traffic_.records_out += n;
    traffic_.bytes_out += bytes;
    return true;
}

slot_counts slot::counts() const noexcept
{
    slot_counts c;
    c.messages = unread_;
    c.bytes = unread_bytes_;
    c.dropped = dropped_;
    c.lost = lost_;
    const queued_record* oldest = queue_.empty() ? nullptr : &queue_.front();
    for (const reader* r : readers_)
        if (!r->nothing_in_flight() && (!oldest || r->in_flight_->front().seq < oldest->seq))
            oldest = &r->in_flight_->front();
    if (oldest)
        c.next_size = oldest->size;
    return c;
}

reader* slot::next_reader_with_room(std::uint32_t size)
{
    const std::size_t n = readers_.size();
    std::size_t at = turn_ < n ? turn_ : 0;
    for (std::size_t tried = 0; tried < n; ++tried) {
        reader* r = readers_[at];
        if (++at == n)
            at = 0;
        if (has_room(*r, size)) {
            turn_ = at; // the next record tries the next reader first
            return r;
        }
    }
    return nullptr;
}

} // namespace slotbus::bus
