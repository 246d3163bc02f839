// What GetMailslotInfo reports, exactly.
#pragma once

#include "slotbus/export.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace slotbus {

/// A slot's settings and queue, as the host sees them at that moment.
struct SLOTBUS_API slot_info {
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

/// Who wrote a record, as the host vouches for it (the kernel's word on a
/// local writer, the plugin its token names), never what the record says;
/// and the name it was written to.
struct SLOTBUS_API record_sender {
    std::uint32_t uid = 0;
    std::uint32_t pid = 0;
    std::string plugin; ///< the writing plugin's name; empty for a client that is none
    std::string name;   ///< the slot path written to, as the writer spelled it: `events\orders`
    /// The peer host the record came from over a link (`--peers`), as this
    /// host's peers file names it; empty for a writer on this host.
    std::string host;
    /// The TLS client that wrote it (`tls:` address), by the name the host's
    /// clients file gives its key; empty for a writer that is none (then uid
    /// is nobody's and pid 0, and its plugin-like sources count as forged).
    std::string client;
    /// The domain (`\\DOMAIN\mailslot\...`, `\\*\...`) whose broadcast
    /// brought it; then `host` is the sending host as its datagram says (a
    /// claim: only the domain key, if the domain has one, vouches for it).
    std::string domain;
};

/// A record as read, with what a drop policy cost just before it and who sent it.
struct SLOTBUS_API received_record {
    std::string data;
    /// Records dropped (by the slot's overflow policy) between the previous
    /// record read and this one: the reader is told in order. gap_unknown:
    /// some may have been lost in a reconnect to a restarted host.
    std::uint32_t missed_before = 0;
    /// Its writer and the name written to (shared by the records of one
    /// writer handle); null only for a record the host sent no sender for.
    std::shared_ptr<const record_sender> from;

    /// The sender, or an empty one.
    [[nodiscard]] const record_sender& sender() const noexcept
    {
        static const record_sender nobody;
        return from ? *from : nobody;
    }

    /// `auto [data, missed_before] = slot.read_record();` as before the sender came.
    template <std::size_t I> [[nodiscard]] auto& get() & noexcept
    {
        if constexpr (I == 0)
            return data;
        else
            return missed_before;
    }
    template <std::size_t I> [[nodiscard]] const auto& get() const& noexcept
    {
        if constexpr (I == 0)
            return data;
        else
            return missed_before;
    }
    template <std::size_t I> [[nodiscard]] auto get() && noexcept
    {
        if constexpr (I == 0)
            return std::move(data);
        else
            return missed_before;
    }
};

/// Records read in one go, their bytes back to back in one buffer: no
/// allocation per record (server_slot::async_read_records). Move-only in
/// spirit, copyable in fact; views stay valid while the batch lives.
class SLOTBUS_API record_batch {
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
    /// Who wrote record i, and to which name (see received_record).
    [[nodiscard]] const record_sender& sender(std::size_t i) const noexcept
    {
        static const record_sender nobody;
        const auto at = entries_[i].sender;
        return at < senders_.size() && senders_[at] ? *senders_[at] : nobody;
    }

    /// Not API: how the connection fills a batch.
    void append(std::string_view record, std::uint32_t missed_before,
                std::shared_ptr<const record_sender> from = {})
    {
        entries_.push_back({bytes_.size(), static_cast<std::uint32_t>(record.size()), missed_before,
                            sender_index(from)});
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
    void append_entry(std::size_t offset, std::uint32_t size, std::uint32_t missed_before,
                      const std::shared_ptr<const record_sender>& from = {})
    {
        entries_.push_back({offset, size, missed_before, sender_index(from)});
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
        std::uint32_t sender; // into senders_
    };
    // Records mostly come in runs of one sender: it is kept once per run.
    std::uint32_t sender_index(const std::shared_ptr<const record_sender>& from)
    {
        if (senders_.empty() || senders_.back() != from)
            senders_.push_back(from); // once per run of one sender's records
        return static_cast<std::uint32_t>(senders_.size() - 1);
    }
    std::string bytes_;
    std::vector<entry> entries_;
    std::vector<std::shared_ptr<const record_sender>> senders_;
};

} // namespace slotbus

template <>
struct std::tuple_size<slotbus::received_record> : std::integral_constant<std::size_t, 2> {
};
template <> struct std::tuple_element<0, slotbus::received_record> {
    using type = std::string;
};
template <> struct std::tuple_element<1, slotbus::received_record> {
    using type = std::uint32_t;
};
