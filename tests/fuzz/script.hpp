// What the fuzz targets share: a script read from the fuzzer's bytes (past
// their end, zeros), and a check that fails loudly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace slotbus::fuzz {

/// Aborts, saying where, when an invariant does not hold.
/// (__builtin_FILE and _LINE: clang 14 has no std::source_location.)
inline void check(bool ok, const char* file = __builtin_FILE(), int line = __builtin_LINE())
{
    if (!ok) {
        std::fprintf(stderr, "invariant broken at %s:%d\n", file, line);
        std::abort();
    }
}

struct script_reader {
    const std::uint8_t* data;
    std::size_t size, at = 0;

    [[nodiscard]] bool done() const { return at >= size; }
    std::uint8_t byte() { return at < size ? data[at++] : 0; }
    /// A number of `bytes` bytes, big-endian.
    std::uint64_t number(int bytes)
    {
        std::uint64_t v = 0;
        for (int i = 0; i < bytes; ++i)
            v = v << 8 | byte();
        return v;
    }
    /// Up to `max` bytes of anything.
    std::string text(std::size_t max)
    {
        const std::size_t n = byte() % (max + 1);
        std::string s;
        for (std::size_t i = 0; i < n; ++i)
            s.push_back(static_cast<char>(byte()));
        return s;
    }
};

} // namespace slotbus::fuzz
