// Where the bus listens: one rule shared by slotbusd, the SDK and the CLI.
#pragma once

#include "slotbus/export.hpp"

#include <string>
#include <string_view>
#include <system_error>

namespace slotbus {

/// The host's default Unix socket: `$XDG_RUNTIME_DIR/slotbus/bus.sock`, else
/// `/tmp/slotbus-$UID/bus.sock`.
SLOTBUS_API std::string default_socket_path();

/// The address a client connects to: `$SLOTBUS_ADDRESS` when set, else
/// default_socket_path(). An address is a socket path, optionally written
/// `unix:PATH`, `tcp:HOST:PORT` or `tls:HOST:PORT` (see parse_address).
SLOTBUS_API std::string default_address();

/// The socket path of an address (`unix:PATH` or `PATH`).
SLOTBUS_API std::string socket_path_of(const std::string& address);

/// An address, parsed: how and where a client connects.
struct SLOTBUS_API bus_address {
    enum class transport { unix_socket, tcp, tls };
    transport kind = transport::unix_socket;
    std::string path; ///< unix_socket: the socket's path
    std::string host; ///< tcp, tls: a host name or an IP address (an IPv6 one without its brackets)
    std::string port; ///< tcp, tls: the port, 1 to 65535, in digits
};

/// Parses an address, the one rule every client follows:
/// - `unix:PATH`, or a bare `PATH`: the host's Unix socket. A bare path is
///   one with no scheme before it: it starts with `/` or `.`, or no `:`
///   comes before its first `/` (`bus.sock`, `run/bus.sock`).
/// - `tcp:HOST:PORT`: TCP (`tcp:127.0.0.1:7400`, `tcp:[::1]:7400`,
///   `tcp:bus.example:7400`); a host listens for it on loopback only.
/// - `tls:HOST:PORT`: TLS 1.3 over TCP, the host's key pinned and this
///   client's key shown (see tls_options).
///
/// Errors: error::invalid_name for an unknown scheme, an empty path or
/// host, or a port that is not 1 to 65535.
///
/// @code
/// std::error_code ec;
/// auto where = slotbus::parse_address("tcp:127.0.0.1:7400", ec); // where.port == "7400"
/// @endcode
[[nodiscard]] SLOTBUS_API bus_address parse_address(std::string_view address, std::error_code& ec);

/// What a `tls:` address needs besides itself: the key this client proves
/// and the one key it accepts from the host. Both are fingerprints of keys
/// `slotbus keygen` makes; the host's clients file pins this client's.
struct SLOTBUS_API tls_options {
    /// A directory with this client's `host.key` and `host.pem` (`slotbus keygen --dir DIR`).
    std::string key_dir;
    /// The host's key ("sha256:" and 64 hex digits, as `slotbus keygen` prints
    /// it): a host showing any other is not the host, and connecting fails
    /// with error::access_denied.
    std::string host_fingerprint;
};

/// `$SLOTBUS_TLS_KEY` (the key directory) and `$SLOTBUS_TLS_PIN` (the host's
/// fingerprint), empty where unset.
[[nodiscard]] SLOTBUS_API tls_options tls_options_from_environment();

} // namespace slotbus
