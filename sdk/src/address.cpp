#include "slotbus/address.hpp"

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

} // namespace slotbus
