#include "slot.hpp"

#include <algorithm>

namespace slotbus::bus {

void slot::remove_reader(reader* r)
{
    std::erase(readers_, r);
    if (!r->in_flight.empty()) {
        record_queue merged;
        auto& returned = r->in_flight;
        while (!returned.empty() || !pending_.empty()) {
            const bool from_returned =
                !returned.empty() &&
                (pending_.empty() || returned.front().seq < pending_.front().seq);
            auto& from = from_returned ? returned : pending_;
            merged.push(from.front());
            from.pop_front();
        }
        pending_ = std::move(merged);
        r->in_flight_bytes = 0;
    }
    r->target = nullptr;
}

bool slot::make_room(std::size_t size)
{
    std::uint32_t gap = 0;
    while (!has_room_for(size) && !pending_.empty()) {
        auto& oldest = pending_.front();
        gap += 1 + oldest.missed_before;
        unread_bytes_ -= oldest.size;
        --unread_;
        ++dropped_;
        pending_.pop_front();
    }
    // The reader hears of the gap before whatever comes next, in order.
    if (pending_.empty())
        pending_gap_ += gap;
    else
        pending_.front().missed_before += gap;
    return has_room_for(size);
}

bool slot::consume(reader& r, std::uint32_t n)
{
    if (n > r.in_flight.size())
        return false;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto size = r.in_flight.front().size;
        r.in_flight_bytes -= size;
        unread_bytes_ -= size;
        ++traffic_.records_out;
        traffic_.bytes_out += size;
        --unread_;
        r.in_flight.pop_front();
    }
    return true;
}

slot_counts slot::counts() const noexcept
{
    slot_counts c;
    c.messages = unread_;
    c.bytes = unread_bytes_;
    c.dropped = dropped_;
    const queued_record* oldest = pending_.empty() ? nullptr : &pending_.front();
    for (const reader* r : readers_)
        if (!r->in_flight.empty() && (!oldest || r->in_flight.front().seq < oldest->seq))
            oldest = &r->in_flight.front();
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
        const bool room = r->in_flight.size() < r->window &&
                          (r->in_flight.empty() || r->in_flight_bytes + size <= config_.push_bytes);
        if (room) {
            turn_ = at; // the next record tries the next reader first
            return r;
        }
    }
    return nullptr;
}

} // namespace slotbus::bus
