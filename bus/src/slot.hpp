// A mailslot at the host: its queue, its readers and its flow control.
#pragma once

#include "record_queue.hpp"

#include "slotbus/protocol.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/topic_pattern.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace slotbus::bus {

using session_id = std::uint64_t;

class slot;

/// One reader handle of a slot (the creator's, or a duplicate's). Records
/// pushed to it stay counted in the slot until the reader reports them read.
struct reader {
    slot* target = nullptr;
    session_id owner = 0;
    std::uint32_t handle = 0;
    std::uint32_t window = 0; ///< records it lets the host push ahead
    record_queue in_flight;
    std::uint64_t in_flight_bytes = 0;
};

struct slot_config {
    std::uint32_t max_message_size = 0; ///< 0: any size
    std::uint32_t read_timeout = 0;
    std::uint64_t byte_budget = 0; ///< unread bytes before the overflow policy acts
    std::uint64_t push_bytes = 0;  ///< bytes pushed ahead to one reader at most
    overflow_policy overflow = overflow_policy::block;
};

/// A session held back by a full slot, and the room its held frame needs.
struct blocked_writer {
    session_id session = 0;
    std::uint64_t need = 0;
};

/// Who created a slot, for listings: its connection and, for a plugin, its name.
struct slot_owner {
    session_id session = 0;
    std::uint32_t pid = 0;
    std::string client; ///< the client name its hello gave
    std::string plugin; ///< empty unless the creator connected with a plugin token
};

/// A slot's traffic since it was created.
struct slot_traffic {
    std::uint64_t records_in = 0, bytes_in = 0;   ///< queued into the slot
    std::uint64_t records_out = 0, bytes_out = 0; ///< read by its readers
};

struct slot_counts {
    std::uint32_t messages = 0;
    std::uint32_t next_size = 0xffffffff;
    std::uint64_t bytes = 0;
    std::uint64_t dropped = 0;
};

/// A slot's queue: records not yet pushed wait in `pending`; pushed ones sit in
/// their reader's `in_flight` until read. Records leave in arrival order.
/// Single-threaded: used only on the routing core's thread.
class slot {
public:
    slot(slot_name name, const slot_config& config) : name_(std::move(name)), config_(config) {}

    [[nodiscard]] const slot_name& name() const noexcept { return name_; }
    [[nodiscard]] slot_config& config() noexcept { return config_; }

    /// An empty slot takes any record, so one larger than the budget still
    /// moves, alone.
    [[nodiscard]] bool has_room_for(std::size_t size) const noexcept
    {
        return unread_ == 0 || unread_bytes_ + size <= config_.byte_budget;
    }

    /// Queues a record (copied in, or `shared` referenced: see record_queue);
    /// it carries the count of records dropped just before it. When nothing
    /// waits ahead of it and a reader has room, it is pushed at once:
    /// emit(reader&, const queued_record&) sends it.
    template <class Emit>
    void enqueue(std::span<const std::uint8_t> bytes, record* shared, Emit&& emit)
    {
        const auto size = static_cast<std::uint32_t>(bytes.size());
        ++traffic_.records_in;
        traffic_.bytes_in += size;
        unread_bytes_ += size;
        ++unread_;
        const auto seq = next_seq_++;
        const auto gap = std::exchange(pending_gap_, 0);
        if (pending_.empty())
            if (reader* to = next_reader_with_room(size)) {
                to->in_flight.push(seq, gap, bytes, shared);
                to->in_flight_bytes += size;
                emit(*to, to->in_flight.back());
                return;
            }
        pending_.push(seq, gap, bytes, shared);
    }

    /// drop_oldest: drops the oldest records not yet pushed until `size` fits.
    /// False when it cannot fit even so (the rest was pushed ahead already).
    bool make_room(std::size_t size);

    /// Counts a record dropped instead of queued; the reader hears of it
    /// before the next record.
    void drop_newest()
    {
        ++dropped_;
        ++pending_gap_;
    }

    void add_reader(reader* r) { readers_.push_back(r); }

    /// Returns what was pushed to r but not read to the front of the queue, in
    /// arrival order, so another reader of the slot gets it.
    void remove_reader(reader* r);

    [[nodiscard]] const std::vector<reader*>& readers() const noexcept { return readers_; }

    /// Pushes pending records to readers with room in their window, in turn;
    /// emit(reader&, const queued_record&) sends one (with its gap, if any).
    template <class Emit> void pump(Emit&& emit)
    {
        while (!pending_.empty()) {
            const queued_record& q = pending_.front();
            reader* to = next_reader_with_room(q.size);
            if (!to)
                return;
            to->in_flight.push(q);
            to->in_flight_bytes += q.size;
            emit(*to, to->in_flight.back());
            pending_.pop_front();
        }
    }

    /// The reader read n of the records pushed to it. False if it claims more
    /// than it was sent.
    bool consume(reader& r, std::uint32_t n);

    /// Exact: every record not yet read, wherever it waits.
    [[nodiscard]] slot_counts counts() const noexcept;
    [[nodiscard]] const slot_traffic& traffic() const noexcept { return traffic_; }

    slot_owner owner;

    /// Sessions held back because this slot was full; resumed when it drains.
    std::vector<blocked_writer> blocked_writers;
    /// The patterns this slot is subscribed to.
    std::vector<topic_pattern> subscriptions;
    /// The last write routed here: one copy per slot, however many patterns match.
    std::uint64_t route_stamp = 0;
    /// The last write frame this slot, holding writers back, had room for.
    std::uint64_t admit_stamp = 0;

private:
    reader* next_reader_with_room(std::uint32_t size);

    slot_name name_;
    slot_config config_;
    record_queue pending_;
    std::vector<reader*> readers_;
    std::size_t turn_ = 0;
    std::uint64_t next_seq_ = 0;
    std::uint32_t unread_ = 0;
    std::uint64_t unread_bytes_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint32_t pending_gap_ = 0; // drops not yet attached to a record
    slot_traffic traffic_;
};

} // namespace slotbus::bus
