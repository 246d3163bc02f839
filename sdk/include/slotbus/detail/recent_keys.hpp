// The last N keys seen, for a subscriber's duplicate check: a ring of keys
// whose strings keep their storage from key to key, indexed by an open
// addressing table, so a check allocates nothing once the ring is full.
#pragma once

#include "slotbus/export.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slotbus::detail {

class SLOTBUS_API recent_keys {
public:
    /// Remembers up to `capacity` keys (a power of two is not needed).
    explicit recent_keys(std::size_t capacity);

    /// True if the key `a` + '\n' + `b` is among the last `capacity` ones;
    /// otherwise remembers it (forgetting the oldest) and returns false.
    bool seen_before(std::string_view a, std::string_view b);

private:
    struct entry {
        std::size_t hash = 0;
        std::string key;
    };
    [[nodiscard]] std::size_t home(std::size_t hash) const { return hash & (table_.size() - 1); }
    void forget(std::uint32_t ring_index);

    std::vector<entry> ring_; // in arrival order, from next_ on
    std::size_t next_ = 0, used_ = 0;
    std::vector<std::uint32_t> table_; // ring index + 1; 0: empty. Linear probing.
    std::string key_;                  // the key being checked
};

} // namespace slotbus::detail
