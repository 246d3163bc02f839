#include "random_token.hpp"

#include <cerrno>
#include <cstdint>
#include <sys/random.h>
#include <system_error>

namespace slotbus::bus {

std::string random_token()
{
    std::uint8_t bytes[16];
    for (std::size_t got = 0; got < sizeof bytes;) {
        const auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno != EINTR)
            throw std::system_error(errno, std::generic_category(), "getrandom");
        got += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string token(2 * sizeof bytes, '0');
    for (std::size_t i = 0; i < sizeof bytes; ++i) {
        token[2 * i] = digits[bytes[i] >> 4];
        token[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    return token;
}

} // namespace slotbus::bus
