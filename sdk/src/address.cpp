#include "slotbus/address.hpp"

#include "slotbus/error.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <unistd.h>

namespace slotbus {

std::string default_socket_path()
{
    if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime)
        return std::string(runtime) + "/slotbus/bus.sock";
    return "/tmp/slotbus-" + std::to_string(::getuid()) + "/bus.sock";
}

std::string default_address()
{
    if (const char* address = std::getenv("SLOTBUS_ADDRESS"); address && *address)
        return address;
    return default_socket_path();
}

std::string socket_path_of(const std::string& address)
{
    constexpr std::string_view prefix = "unix:";
    if (address.starts_with(prefix))
        return address.substr(prefix.size());
    return address;
}

bus_address parse_address(std::string_view address, std::error_code& ec)
{
    ec.clear();
    bus_address out;
    const auto invalid = [&] {
        ec = error::invalid_name;
        return bus_address{};
    };
    // A scheme is a letter, then letters, digits, '+', '-' or '.', then ':'
    // (RFC 3986's rule), before any '/': what else comes first is a path.
    const auto colon = address.find(':');
    const auto scheme = address.substr(0, colon == std::string_view::npos ? 0 : colon);
    const bool has_scheme =
        !scheme.empty() && std::isalpha(static_cast<unsigned char>(scheme[0])) &&
        std::all_of(scheme.begin(), scheme.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        });
    if (!has_scheme) {
        if (address.empty())
            return invalid();
        out.path = std::string(address);
        return out;
    }
    const auto rest = address.substr(colon + 1);
    if (scheme == "unix") {
        if (rest.empty())
            return invalid();
        out.path = std::string(rest);
        return out;
    }
    if (scheme != "tcp" && scheme != "tls")
        return invalid();
    // HOST:PORT, the last ':' before the port; an IPv6 host in brackets.
    const auto port_colon = rest.rfind(':');
    if (port_colon == std::string_view::npos)
        return invalid();
    auto host = rest.substr(0, port_colon);
    const auto port = rest.substr(port_colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find_first_of("[]:") != std::string_view::npos)
        return invalid(); // an IPv6 address must be in brackets
    if (host.empty() || port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return invalid();
    const auto number = std::stoul(std::string(port));
    if (number == 0 || number > 65535)
        return invalid();
    out.kind = scheme == "tls" ? bus_address::transport::tls : bus_address::transport::tcp;
    out.host = std::string(host);
    out.port = std::to_string(number); // no leading zeros
    return out;
}

tls_options tls_options_from_environment()
{
    const auto read = [](const char* name) {
        const char* value = std::getenv(name);
        return std::string(value ? value : "");
    };
    return {read("SLOTBUS_TLS_KEY"), read("SLOTBUS_TLS_PIN")};
}

} // namespace slotbus
