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
    // A table slot: which ring entry (+ 1; 0: empty) and its key's hash, so
    // probing compares hashes without touching the ring.
    struct slot {
        std::uint32_t entry = 0;
        std::uint32_t hash = 0;
    };
    [[nodiscard]] std::size_t home(std::uint32_t hash) const { return hash & (table_.size() - 1); }
    void forget(std::uint32_t ring_index);

    std::vector<std::string> ring_; // keys in arrival order, from next_ on
    std::vector<std::uint32_t> ring_hash_;
    std::size_t next_ = 0, used_ = 0;
    std::vector<slot> table_; // linear probing, at most half full
    std::string key_;         // the key being checked
};

} // namespace slotbus::detail
