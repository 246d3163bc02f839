// What GetMailslotInfo reports, exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

/// missed_before of the first record after a reconnect to a restarted host:
/// records may have been lost between it and the one before (the host's
/// queue went with it), how many is not known.
inline constexpr std::uint32_t gap_unknown = 0xffffffff;

/// A record as read, with what a drop policy cost just before it.
struct received_record {
    std::string data;
    /// Records dropped (by the slot's overflow policy) between the previous
    /// record read and this one: the reader is told in order. gap_unknown:
    /// some may have been lost in a reconnect to a restarted host.
    std::uint32_t missed_before = 0;
};

/// Records read in one go, their bytes back to back in one buffer: no
/// allocation per record (server_slot::async_read_records). Move-only in
/// spirit, copyable in fact; views stay valid while the batch lives.
class record_batch {
public:
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
    [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
    /// The bytes of record i.
    [[nodiscard]] std::string_view operator[](std::size_t i) const noexcept
    {
        return {bytes_.data() + entries_[i].offset, entries_[i].size};
    }
    /// Records dropped (by the slot's overflow policy) just before record i.
    [[nodiscard]] std::uint32_t missed_before(std::size_t i) const noexcept
    {
        return entries_[i].missed_before;
    }

    /// Not API: how the connection fills a batch.
    void append(std::string_view record, std::uint32_t missed_before)
    {
        entries_.push_back(
            {bytes_.size(), static_cast<std::uint32_t>(record.size()), missed_before});
        bytes_.append(record);
    }
    /// Not API: records as the connection holds them, a u32 length before
    /// each, in one copy; then append_entry for each (its offset from the
    /// start this returns).
    std::size_t append_wire(std::string_view wire)
    {
        const auto at = bytes_.size();
        bytes_.append(wire);
        return at;
    }
    void append_entry(std::size_t offset, std::uint32_t size, std::uint32_t missed_before)
    {
        entries_.push_back({offset, size, missed_before});
    }
    void reserve(std::size_t records, std::size_t bytes)
    {
        entries_.reserve(records);
        bytes_.reserve(bytes);
    }

private:
    struct entry {
        std::size_t offset;
        std::uint32_t size;
        std::uint32_t missed_before;
    };
    std::string bytes_;
    std::vector<entry> entries_;
};

} // namespace slotbus
