// A slot's subscription to a topic pattern, held as an RAII object.
#pragma once

#include "slotbus/detail/connection_impl.hpp"
#include "slotbus/export.hpp"
#include "slotbus/topic_pattern.hpp"

#include <memory>

namespace slotbus {

/// While it lives, every write to a name matching its pattern also reaches
/// its slot. Dropping it unsubscribes; closing the slot ends it too. Move-only.
///
/// @code
/// auto inbox = slotbus::server_slot::create(bus, "audit/inbox");
/// auto all_orders = inbox.subscribe("events/orders/**");
/// @endcode
class [[nodiscard]] SLOTBUS_API subscription {
public:
    subscription() = default;
    subscription(std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle,
                 topic_pattern pattern) noexcept
        : impl_(std::move(impl)), handle_(handle), pattern_(std::move(pattern))
    {
    }
    subscription(subscription&& other) noexcept
        : impl_(std::move(other.impl_)), handle_(std::exchange(other.handle_, 0)),
          pattern_(std::move(other.pattern_))
    {
    }
    subscription& operator=(subscription&& other) noexcept
    {
        if (this != &other) {
            // The old one goes as the destructor lets it go: sent, not waited
            // for, so assigning works on the connection's own thread too.
            subscription old(std::move(*this));
            impl_ = std::move(other.impl_);
            handle_ = std::exchange(other.handle_, 0);
            pattern_ = std::move(other.pattern_);
        }
        return *this;
    }
    ~subscription();

    /// Unsubscribes now. Errors: error::file_not_found (its slot is gone).
    void cancel(std::error_code& ec);
    void cancel();

    [[nodiscard]] bool active() const noexcept { return handle_ != 0; }
    [[nodiscard]] const topic_pattern& pattern() const noexcept { return pattern_; }

private:
    std::shared_ptr<detail::connection_impl> impl_;
    std::uint32_t handle_ = 0;
    topic_pattern pattern_;
};

} // namespace slotbus
