// A record: one write's bytes, stored once and shared by every queue it sits in.
#pragma once

#include <boost/intrusive_ptr.hpp>

#include <cstdint>
#include <cstring>
#include <new>
#include <span>

namespace slotbus::bus {

class record;
using record_ptr = boost::intrusive_ptr<record>;

// One allocation holds the count, the size and the bytes. The count is not
// atomic: records live on the routing core's single thread. Only records too
// large to copy into every queue they go to are made (see record_queue).
class record {
public:
    static record_ptr make(std::span<const std::uint8_t> bytes)
    {
        void* memory = ::operator new(sizeof(record) + bytes.size());
        auto* r = new (memory) record(static_cast<std::uint32_t>(bytes.size()));
        if (!bytes.empty())
            std::memcpy(r->data(), bytes.data(), bytes.size());
        return record_ptr(r);
    }

    /// The record whose bytes start at `data` (from its data()).
    static record* of(const std::uint8_t* data) noexcept
    {
        return reinterpret_cast<record*>(const_cast<std::uint8_t*>(data)) - 1;
    }

    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
    [[nodiscard]] std::uint8_t* data() noexcept
    {
        return reinterpret_cast<std::uint8_t*>(this + 1);
    }
    [[nodiscard]] const std::uint8_t* data() const noexcept
    {
        return reinterpret_cast<const std::uint8_t*>(this + 1);
    }
    [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept { return {data(), size_}; }

    friend void intrusive_ptr_add_ref(record* r) noexcept { ++r->refs_; }
    friend void intrusive_ptr_release(record* r) noexcept
    {
        if (--r->refs_ == 0) {
            r->~record();
            ::operator delete(r);
        }
    }

private:
    explicit record(std::uint32_t size) noexcept : size_(size) {}

    std::uint32_t refs_ = 0;
    std::uint32_t size_;
};

} // namespace slotbus::bus
