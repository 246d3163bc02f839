// A mailslot at the host: its queue, its readers and its flow control.
#pragma once

#include "policy.hpp"
#include "record_queue.hpp"

#include "slotbus/protocol.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/topic_pattern.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
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
    std::uint32_t pushed = 0; ///< records pushed to it, not yet read
    std::uint64_t pushed_bytes = 0;
    /// Its connection's output is over the host's bound: nothing is pushed
    /// to it until that output has gone (the records wait in the slot).
    const bool* paused = &never_paused;
    bool timeout_owed = false; ///< its connection owes it a timeout_changed
    static constexpr bool never_paused = false;
    /// Where its pushed records wait when the slot has other readers (else
    /// they stay at the front of the slot's queue: see slot). Made when
    /// first needed: most slots have one reader and never need it.
    [[nodiscard]] record_queue& in_flight()
    {
        if (!in_flight_)
            in_flight_ = std::make_unique<record_queue>();
        return *in_flight_;
    }
    [[nodiscard]] bool nothing_in_flight() const noexcept
    {
        return !in_flight_ || in_flight_->empty();
    }
    std::unique_ptr<record_queue> in_flight_;
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

/// Who subscribed a slot to a pattern, through which of its reader handles.
struct subscriber {
    session_id session = 0;
    std::uint32_t handle = 0;
    /// Its connection's identity, shared: a slot keeps no copy of its own.
    std::shared_ptr<const identity> as;
};

/// Who created a slot, for listings: its connection and, for a plugin, its name.
struct slot_owner {
    session_id session = 0;
    std::uint32_t pid = 0, uid = 0; ///< the kernel's word (SO_PEERCRED), never the hello's
    std::uint32_t claimed_pid = 0;  ///< what its hello said, shown as a claim
    std::string client;             ///< the client name its hello gave
    std::string plugin;             ///< empty unless the creator connected with a plugin token
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
    std::uint64_t dropped = 0; ///< records its readers will not get: overflow, and lost broadcasts
    std::uint64_t lost = 0;    ///< of them, broadcasts that never reached this host
};

/// A slot's queue. Records not yet pushed wait in `queue_`; pushed ones stay
/// counted until their reader reads them, and stay held so that, should that
/// reader close unread, another reader of the slot gets them. A slot with one
/// reader (the usual case) keeps them at the front of `queue_`, so pushing a
/// record moves a cursor and a run of records goes out as one span; with
/// duplicates, each reader holds its own in `in_flight`. Records leave in
/// arrival order. Single-threaded: used only on the routing core's thread.
///
/// Emit, below, is called as emit(reader&, const queued_record&) to send one
/// record (with its gap, if any) and emit(reader&, byte_span, origin*) to
/// send a run of records of one origin in wire form.
class slot {
public:
    slot(slot_name name, const slot_config& config) : name_(std::move(name)), config_(config) {}

    [[nodiscard]] const slot_name& name() const noexcept { return name_; }
    [[nodiscard]] slot_config& config() noexcept { return config_; }
    [[nodiscard]] const slot_config& config() const noexcept { return config_; }

    /// What the host holds for an unread record beside its bytes: its 4-byte
    /// length and its entry in the queue. Counted against the budget, so a
    /// full slot's memory is its budget, whatever the records' size.
    static constexpr std::size_t record_cost = 4 + sizeof(queued_record);

    /// Room for `wire` more bytes of records in their wire form (each with
    /// its 4-byte length: a write frame's list is measured by its size, with
    /// no walk) beside what the unread records cost. The incoming records'
    /// entries count once they are queued, so a slot goes over its budget by
    /// one frame's entries at most. An empty slot takes any record, so one
    /// larger than the budget still moves, alone.
    [[nodiscard]] bool has_room_for(std::size_t wire) const noexcept
    {
        return unread_ == 0 || unread_bytes_ + record_cost * unread_ + wire <= config_.byte_budget;
    }

    /// Queues a record of `from` (copied in, or `shared` referenced: see
    /// record_queue); it carries the count of records dropped just before
    /// it. When nothing waits ahead of it and a reader has room, it is pushed
    /// at once.
    template <class Emit>
    void enqueue(std::span<const std::uint8_t> bytes, record* shared, origin* from, Emit&& emit)
    {
        const auto size = static_cast<std::uint32_t>(bytes.size());
        count_in(1, size);
        const auto seq = next_seq_++;
        const auto gap = std::exchange(pending_gap_, 0);
        if (waiting() == 0)
            if (reader* to = next_reader_with_room(size)) {
                note_pushed(*to, size);
                const bool at_front = solo();
                auto& held = at_front ? queue_ : to->in_flight();
                held.push(seq, gap, bytes, shared, from);
                solo_pushed_ += at_front;
                emit(*to, held.back());
                return;
            }
        queue_.push(seq, gap, bytes, shared, from);
    }

    /// Queues a write frame's whole record list, checking it on the way (see
    /// record_queue::push_list: `limit` is the largest record it takes), then
    /// pushes what readers have room for. Returns the records queued: none
    /// when the list was refused.
    template <class Emit>
    std::uint32_t enqueue_list(std::span<const std::uint8_t> list, std::uint32_t limit,
                               origin* from, Emit&& emit)
    {
        const auto pushed = queue_.push_list(next_seq_, pending_gap_, list, limit, from);
        if (pushed.count == 0)
            return 0;
        pending_gap_ = 0;
        count_in(pushed.count, pushed.bytes);
        next_seq_ += pushed.count;
        pump(emit);
        return pushed.count;
    }

    /// drop_oldest: drops the oldest records not yet pushed until `wire`
    /// bytes fit (see has_room_for). False when they cannot even so (the
    /// rest was pushed ahead already).
    bool make_room(std::size_t wire);

    /// Counts a record dropped instead of queued; the reader hears of it
    /// before the next record.
    void drop_newest()
    {
        ++dropped_;
        ++pending_gap_;
    }
    /// Counts `n` records a broadcast's sender numbered for this slot's name
    /// that never reached this host: dropped too, and told the same way.
    void lose(std::uint32_t n)
    {
        constexpr std::uint32_t max_gap = 0x7fffffff; // queued_record::missed_before's 31 bits
        n = std::min(n, max_gap - std::min(pending_gap_, max_gap));
        dropped_ += n;
        lost_ += n;
        pending_gap_ += n;
    }

    void add_reader(reader* r);

    /// Returns what was pushed to r but not read to the front of the queue, in
    /// arrival order, so another reader of the slot gets it.
    void remove_reader(reader* r);

    [[nodiscard]] const std::vector<reader*>& readers() const noexcept { return readers_; }

    /// Pushes waiting records to readers with room in their window, in turn.
    template <class Emit> void pump(Emit&& emit)
    {
        if (solo()) {
            pump_solo(emit);
            return;
        }
        while (!queue_.empty()) {
            const queued_record& q = queue_.front();
            reader* to = next_reader_with_room(q.size);
            if (!to)
                return;
            note_pushed(*to, q.size);
            to->in_flight().push(q);
            emit(*to, to->in_flight().back());
            queue_.pop_front();
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
    /// Its reader held writers back for longer than the host allows (see
    /// core_limits::slow_after): until it has read its queue down to half its
    /// budget, records that do not fit are dropped (counted, and told to the
    /// reader in order) instead of holding anyone back.
    bool slow = false;
    std::uint64_t slow_marks = 0; ///< times it was marked slow
    /// Since when it holds writers back, and when its readers last read:
    /// the later of the two is when it last made progress.
    std::chrono::steady_clock::time_point holding_since{}, last_read{};
    bool holding = false;      ///< listed in the core's holding_
    bool holding_told = false; ///< the log heard it has held writers since holding_since
    /// It was slow and has read down to half its budget: it may hold writers again.
    [[nodiscard]] bool caught_up() const noexcept
    {
        return unread_bytes_ <= config_.byte_budget / 2;
    }
    /// The patterns this slot is subscribed to, and who subscribed each
    /// (charged for it; decided for it again on a policy reload, even once
    /// its connection has gone and the slot lives on through a duplicate).
    std::vector<topic_pattern> subscriptions;
    std::vector<subscriber> subscribers;
    /// The last write routed here: one copy per slot, however many patterns match.
    std::uint64_t route_stamp = 0;
    /// The last write frame this slot, holding writers back, had room for.
    std::uint64_t admit_stamp = 0;

private:
    /// One reader whose pushed records are the first solo_pushed_ of queue_.
    /// Not with drop_oldest, which drops from the front of what waits.
    [[nodiscard]] bool solo() const noexcept
    {
        return readers_.size() == 1 && readers_.front()->nothing_in_flight() &&
               config_.overflow != overflow_policy::drop_oldest;
    }
    /// Records queued and not yet pushed to any reader.
    [[nodiscard]] std::size_t waiting() const noexcept { return queue_.size() - solo_pushed_; }

    /// Pushes in runs: records adjacent in the queue's log, none with a gap,
    /// go out as one span, up to one frame's worth.
    template <class Emit> void pump_solo(Emit&& emit)
    {
        reader& to = *readers_.front();
        while (waiting() != 0) {
            const queued_record& first = queue_[solo_pushed_];
            if (!has_room(to, first.size))
                return;
            note_pushed(to, first.size);
            std::size_t end = solo_pushed_ + 1;
            if (first.missed_before || first.is_shared) {
                emit(to, first);
            } else {
                const queued_record* last = &first;
                std::size_t run_bytes = 4 + first.size;
                for (; end < queue_.size(); ++end) {
                    const queued_record& next = queue_[end];
                    run_bytes += 4 + next.size;
                    if (next.missed_before || !record_queue::adjacent(*last, next) ||
                        run_bytes > record_list_builder::batch_bytes || !has_room(to, next.size))
                        break;
                    note_pushed(to, next.size);
                    last = &next;
                }
                emit(to, record_queue::wire(first, *last), first.from);
            }
            solo_pushed_ = end;
        }
    }

    [[nodiscard]] bool has_room(const reader& r, std::uint32_t size) const noexcept
    {
        return r.pushed < r.window && !*r.paused &&
               (r.pushed == 0 || r.pushed_bytes + size <= config_.push_bytes);
    }
    static void note_pushed(reader& r, std::uint32_t size) noexcept
    {
        ++r.pushed;
        r.pushed_bytes += size;
    }
    void count_in(std::uint32_t records, std::uint64_t bytes) noexcept
    {
        traffic_.records_in += records;
        traffic_.bytes_in += bytes;
        unread_ += records;
        unread_bytes_ += bytes;
    }
    reader* next_reader_with_room(std::uint32_t size);

    slot_name name_;
    slot_config config_;
    record_queue queue_;
    std::size_t solo_pushed_ = 0; // records at queue_'s front pushed to the one reader
    std::vector<reader*> readers_;
    std::size_t turn_ = 0;
    std::uint64_t next_seq_ = 0;
    std::uint32_t unread_ = 0;
    std::uint64_t unread_bytes_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint64_t lost_ = 0;        // of them, broadcasts that never came
    std::uint32_t pending_gap_ = 0; // drops not yet attached to a record
    slot_traffic traffic_;
};

} // namespace slotbus::bus
