// Not API: a write's completion handler, kept without an allocation when it can be.
#pragma once

#include "slotbus/export.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace slotbus::detail {

/// Writes are pipelined by the thousand, so what a handler costs per write
/// counts. A small handler with no executor of its own (a plain lambda) may
/// run on any thread: it is kept in place and called directly when its
/// acknowledgement comes, with no allocation and no dispatch. Any other is
/// type-erased by asio::any_completion_handler and dispatched to its executor.
class SLOTBUS_API write_handler {
public:
    using signature = void(boost::system::error_code, std::uint32_t);

    template <class Handler>
    requires(!std::is_same_v<std::decay_t<Handler>, write_handler>)
        write_handler(Handler&& h) // NOLINT: converts like any_completion_handler
    {
        using stored =
            std::conditional_t<kept_in_place<std::decay_t<Handler>>, std::decay_t<Handler>, erased>;
        new (storage_) stored(std::forward<Handler>(h));
        ops_ = &operations_for<stored>;
    }
    write_handler(write_handler&& other) noexcept : ops_(std::exchange(other.ops_, nullptr))
    {
        if (ops_)
            ops_->move(storage_, other.storage_);
    }
    write_handler& operator=(write_handler&& other) noexcept
    {
        if (this != &other) {
            reset();
            ops_ = std::exchange(other.ops_, nullptr);
            if (ops_)
                ops_->move(storage_, other.storage_);
        }
        return *this;
    }
    write_handler(const write_handler&) = delete;
    write_handler& operator=(const write_handler&) = delete;
    ~write_handler() { reset(); }

    /// Completes the write; once.
    void operator()(boost::system::error_code ec, std::uint32_t delivered)
    {
        std::exchange(ops_, nullptr)->complete(storage_, ec, delivered);
    }

private:
    // Never move-assigned: Boost 1.81's move assignment of it recurses forever.
    using erased = boost::asio::any_completion_handler<signature>;
    static constexpr std::size_t capacity = 64;

    template <class H>
    static constexpr bool
        kept_in_place = sizeof(H) <= capacity && alignof(H) <= alignof(std::max_align_t) &&
                        std::is_nothrow_move_constructible_v<H>&& std::is_same_v<
                            boost::asio::associated_executor_t<H>, boost::asio::system_executor>;

    struct operations {
        void (*move)(void* to, void* from) noexcept; // and destroys `from`
        void (*destroy)(void* h) noexcept;
        void (*complete)(void* h, boost::system::error_code, std::uint32_t); // and destroys
    };
    template <class H>
    static constexpr operations operations_for{
        [](void* to, void* from) noexcept {
            new (to) H(std::move(*static_cast<H*>(from)));
            static_cast<H*>(from)->~H();
        },
        [](void* h) noexcept { static_cast<H*>(h)->~H(); },
        [](void* h, boost::system::error_code ec, std::uint32_t delivered) {
            H local(std::move(*static_cast<H*>(h))); // the handler may write again, or
            static_cast<H*>(h)->~H();                // destroy what holds this one
            if constexpr (std::is_same_v<H, erased>)
                boost::asio::dispatch(boost::asio::append(std::move(local), ec, delivered));
            else
                std::move(local)(ec, delivered);
        }};

    void reset() noexcept
    {
        if (auto* ops = std::exchange(ops_, nullptr))
            ops->destroy(storage_);
    }

    alignas(std::max_align_t) unsigned char storage_[capacity];
    const operations* ops_ = nullptr;
};

} // namespace slotbus::detail
