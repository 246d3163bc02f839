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
// atomic: records live on the routing core's single thread. Records up to
// 248 bytes come from free lists by size (they are made and freed by the
// hundred per read; malloc's per-thread cache holds only a few of each size).
class record {
public:
    static record_ptr make(std::span<const std::uint8_t> bytes)
    {
        void* memory = allocate(bytes.size());
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
            const auto size = r->size_;
            r->~record();
            release(r, size);
        }
    }

private:
    explicit record(std::uint32_t size) noexcept : size_(size) {}

    // Blocks of 32, 64, ... 256 bytes (header included), one free list each.
    static constexpr std::size_t block_step = 32;
    static constexpr std::size_t classes = 8;
    static constexpr std::size_t max_free = 16384; // blocks kept per class, at most

    static constexpr std::size_t class_of(std::size_t size) noexcept
    {
        return (sizeof(record) + size + block_step - 1) / block_step - 1;
    }
    struct free_lists {
        std::vector<void*> blocks[classes];
        ~free_lists()
        {
            for (auto& list : blocks)
                for (void* b : list)
                    ::operator delete(b);
        }
    };
    static free_lists& spare() noexcept
    {
        static free_lists lists; // the core's thread is the only user
        return lists;
    }
    static void* allocate(std::size_t size)
    {
        const auto c = class_of(size);
        if (c >= classes)
            return ::operator new(sizeof(record) + size);
        auto& list = spare().blocks[c];
        if (list.empty())
            return ::operator new((c + 1) * block_step);
        void* b = list.back();
        list.pop_back();
        return b;
    }
    static void release(void* b, std::size_t size) noexcept
    {
        const auto c = class_of(size);
        if (c < classes && spare().blocks[c].size() < max_free) {
            try {
                spare().blocks[c].push_back(b);
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
