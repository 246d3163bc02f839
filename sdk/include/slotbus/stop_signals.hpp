// Stopping a plugin cleanly: the host stops its plugins with SIGTERM, a
// terminal with SIGINT (^C). One object instead of each plugin's own
// signal_set.
#pragma once

#include "slotbus/connection.hpp"
#include "slotbus/export.hpp"

#include <functional>
#include <memory>

namespace slotbus {

/// While it lives, SIGTERM and SIGINT call `on_stop` once, on the
/// connection's executor (by default `bus.stop()`, so `bus.run()` returns and
/// the plugin can finish its work and exit 0).
///
/// @code
/// slotbus::connection bus;
/// bus.connect();
/// slotbus::stop_signals stop(bus);
/// ... start the plugin's work ...
/// bus.run(); // returns on SIGTERM or ^C
/// @endcode
class SLOTBUS_API stop_signals {
public:
    explicit stop_signals(connection& bus, std::function<void(int signo)> on_stop = {});
    ~stop_signals();
    stop_signals(const stop_signals&) = delete;
    stop_signals& operator=(const stop_signals&) = delete;

    /// The signal that came (SIGTERM, SIGINT), or 0 while none has.
    [[nodiscard]] int received() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace slotbus
