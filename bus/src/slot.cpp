#include "slot.hpp"

#include <algorithm>

namespace slotbus::bus {

void slot::remove_reader(reader *r)
{
    std::erase(readers_, r);
    if (!r->in_flight.empty()) {
        std::deque<queued_record> merged;
        std::merge(std::make_move_iterator(r->in_flight.begin()),
                   std::make_move_iterator(r->in_flight.end()),
                   std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.end()), std::back_inserter(merged),
                   [](const queued_record &a, const queued_record &b) { return a.seq < b.seq; });
        pending_ = std::move(merged);
        r->in_flight.clear();
        r->in_flight_bytes = 0;
    }
    r->target = nullptr;
}

bool slot::consume(reader &r, std::uint32_t n)
{
    if (n > r.in_flight.size())
        return false;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto size = r.in_flight.front().rec->size();
        r.in_flight_bytes -= size;
        unread_bytes_ -= size;
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
    const queued_record *oldest = pending_.empty() ? nullptr : &pending_.front();
    for (const reader *r : readers_)
        if (!r->in_flight.empty() && (!oldest || r->in_flight.front().seq < oldest->seq))
            oldest = &r->in_flight.front();
    if (oldest)
        c.next_size = oldest->rec->size();
    return c;
}

reader *slot::next_reader_with_room(std::uint32_t size)
{
    for (std::size_t tried = 0; tried < readers_.size(); ++tried) {
        reader *r = readers_[(turn_ + tried) % readers_.size()];
        const bool room = r->in_flight.size() < r->window &&
                          (r->in_flight.empty() || r->in_flight_bytes + size <= config_.push_bytes);
        if (room) {
            turn_ = (turn_ + tried + 1) % readers_.size();
            return r;
        }
    }
    return nullptr;
}

} // namespace slotbus::bus
