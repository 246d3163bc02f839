// What GetMailslotInfo reports, exactly.
#pragma once

#include <cstdint>
#include <string>

namespace slotbus {

/// A slot's settings and queue, as the host sees them at that moment.
struct slot_info {
    std::uint32_t max_message_size = 0;   ///< 0: any size
    std::uint32_t next_size = 0xffffffff; ///< size of the next record, or mailslot_no_message
    std::uint32_t message_count = 0;      ///< records not yet read
    std::uint32_t read_timeout = 0;       ///< ms; mailslot_wait_forever waits forever
    std::uint64_t queued_bytes = 0;       ///< bytes not yet read
    std::uint64_t dropped = 0;            ///< records its overflow policy dropped, ever
};

/// A record as read, with what a drop policy cost just before it.
struct received_record {
    std::string data;
    /// Records dropped (by the slot's overflow policy) between the previous
    /// record read and this one: the reader is told in order.
    std::uint32_t missed_before = 0;
};

} // namespace slotbus
