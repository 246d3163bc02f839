// Where the bus listens: one rule shared by slotbusd, the SDK and the CLI.
#pragma once

#include <string>

namespace slotbus {

/// The host's default Unix socket: `$XDG_RUNTIME_DIR/slotbus/bus.sock`, else
/// `/tmp/slotbus-$UID/bus.sock`.
std::string default_socket_path();

/// The address a client connects to: `$SLOTBUS_ADDRESS` when set, else
/// default_socket_path(). An address is a socket path, optionally written
/// `unix:PATH`.
std::string default_address();

/// The socket path of an address (`unix:PATH` or `PATH`).
std::string socket_path_of(const std::string& address);

} // namespace slotbus
