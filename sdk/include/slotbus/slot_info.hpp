// What GetMailslotInfo reports, exactly.
#pragma once

#include <cstdint>

namespace slotbus {

/// A slot's settings and queue, as the host sees them at that moment.
struct slot_info {
    std::uint32_t max_message_size = 0;   ///< 0: any size
    std::uint32_t next_size = 0xffffffff; ///< size of the next record, or mailslot_no_message
    std::uint32_t message_count = 0;      ///< records not yet read
    std::uint32_t read_timeout = 0;       ///< ms; mailslot_wait_forever waits forever
    std::uint64_t queued_bytes = 0;       ///< bytes not yet read
};

} // namespace slotbus
