// A record: one write's bytes, stored once and shared by every queue it sits in.
#pragma once

#include "lane.hpp"

#include <boost/intrusive_ptr.hpp>

#include <cstdint>
#include <cstring>
#include <new>
#include <span>

namespace slotbus::bus {

class record;
using record_ptr = boost::intrusive_ptr<record>;

// One allocation holds the count, the size and the bytes — or, for a record
// in a lane, where its bytes are in the lane (the host's read-only view),
// and a reference to the lane, whose space it holds until it goes. The
// count is not atomic: records live on the routing core's single thread.
// Only records too large to copy into every queue they go to are made (see
// record_queue).
class record {
public:
    static record_ptr make(std::span<const std::uint8_t> bytes)
    {
        void* memory = ::operator new(sizeof(record) + bytes.size());
        auto* r = new (memory) record(static_cast<std::uint32_t>(bytes.size()));
        r->bytes_ = reinterpret_cast<const std::uint8_t*>(r + 1);
        if (!bytes.empty())
            std::memcpy(r + 1, bytes.data(), bytes.size());
        return record_ptr(r);
    }
    /// A record whose bytes stay where they are in lane `in` (from lane::take),
    /// at `position`.
    static record_ptr in_lane(lane& in, std::span<const std::uint8_t> bytes, std::uint64_t position)
    {
        auto* r =
            new (::operator new(sizeof(record))) record(static_cast<std::uint32_t>(bytes.size()));
        r->bytes_ = bytes.data();
        r->lane_ = &in;
        r->position_ = position;
        intrusive_ptr_add_ref(&in);
        return record_ptr(r);
    }

    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
    [[nodiscard]] const std::uint8_t* data() const noexcept { return bytes_; }
    [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept { return {bytes_, size_}; }
    /// The lane its bytes are in, or null.
    [[nodiscard]] lane* in() const noexcept { return lane_; }
    [[nodiscard]] std::uint64_t position() const noexcept { return position_; }

    friend void intrusive_ptr_add_ref(record* r) noexcept { ++r->refs_; }
    friend void intrusive_ptr_release(record* r) noexcept
    {
        if (--r->refs_ == 0)
            destroy(r);
    }

private:
    explicit record(std::uint32_t size) noexcept : size_(size) {}
    // Out of line (lane.cpp): it may let a lane go too.
    static void destroy(record* r) noexcept;

    std::uint32_t refs_ = 0;
    std::uint32_t size_;
    const std::uint8_t* bytes_ = nullptr;
    lane* lane_ = nullptr;
    std::uint64_t position_ = 0;
};

} // namespace slotbus::bus
