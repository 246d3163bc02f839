// A record: one write's bytes, stored once and shared by every queue it sits in.
#pragma once

#include <boost/intrusive_ptr.hpp>

#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <vector>

namespace slotbus::bus {

class record;
using record_ptr = boost::intrusive_ptr<record>;

// One allocation holds the count, the size and the bytes. The count is not
// atomic: records live on the routing core's single thread. Small records
// come from a free list (records are made and freed by the hundred per read;
// malloc's per-thread cache holds only a few of each size).
class record {
public:
    static record_ptr make(std::span<const std::uint8_t> bytes)
    {
        const bool small = bytes.size() <= small_payload;
        void* memory = small ? take_small() : ::operator new(sizeof(record) + bytes.size());
        auto* r = new (memory) record(static_cast<std::uint32_t>(bytes.size()));
        if (!bytes.empty())
            std::memcpy(r->data(), bytes.data(), bytes.size());
        return record_ptr(r);
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
            const bool small = r->size_ <= small_payload;
            r->~record();
            if (small)
                give_small(r);
            else
                ::operator delete(r);
        }
    }

private:
    explicit record(std::uint32_t size) noexcept : size_(size) {}

    static constexpr std::size_t small_payload = 256 - 8; // a block of 256 bytes
    static constexpr std::size_t max_free = 8192;         // 2 MiB of blocks kept at most

    struct free_list {
        std::vector<void*> blocks;
        ~free_list()
        {
            for (void* b : blocks)
                ::operator delete(b);
        }
    };
    static free_list& spare() noexcept
    {
        static free_list list; // the core's thread is the only user
        return list;
    }
    static void* take_small()
    {
        auto& list = spare().blocks;
        if (list.empty())
            return ::operator new(sizeof(record) + small_payload);
        void* b = list.back();
        list.pop_back();
        return b;
    }
    static void give_small(void* b) noexcept
    {
        auto& list = spare().blocks;
        if (list.size() < max_free) {
            try {
                list.push_back(b);
                return;
            } catch (...) { // no room to remember it: give it back
            }
        }
        ::operator delete(b);
    }

    std::uint32_t refs_ = 0;
    std::uint32_t size_;
};

} // namespace slotbus::bus
