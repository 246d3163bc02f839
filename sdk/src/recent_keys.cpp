#include "slotbus/detail/recent_keys.hpp"

#include <bit>
#include <functional>

namespace slotbus::detail {

recent_keys::recent_keys(std::size_t capacity)
    : ring_(std::max<std::size_t>(capacity, 1)), ring_hash_(ring_.size()),
      // At most half full: probes stay short.
      table_(std::bit_ceil(2 * ring_.size()))
{
}

bool recent_keys::seen_before(std::string_view a, std::string_view b)
{
    key_.assign(a).append(1, '\n').append(b);
    const auto hash = static_cast<std::uint32_t>(std::hash<std::string_view>{}(key_));
    const auto mask = table_.size() - 1;
    for (auto i = home(hash); table_[i].entry != 0; i = (i + 1) & mask)
        if (table_[i].hash == hash && ring_[table_[i].entry - 1] == key_)
            return true;
    if (used_ == ring_.size())
        forget(static_cast<std::uint32_t>(next_)); // the oldest, whose place this is
    else
        ++used_;
    std::swap(ring_[next_], key_); // key_ keeps the old key's storage for the next one
    ring_hash_[next_] = hash;
    auto i = home(hash);
    while (table_[i].entry != 0)
        i = (i + 1) & mask;
    table_[i] = {static_cast<std::uint32_t>(next_ + 1), hash};
    next_ = (next_ + 1) % ring_.size();
    return false;
}

void recent_keys::forget(std::uint32_t ring_index)
{
    const auto mask = table_.size() - 1;
    auto i = home(ring_hash_[ring_index]);
    while (table_[i].entry != ring_index + 1)
        i = (i + 1) & mask;
    // Backward-shift deletion: later entries of the probe run move up, so
    // no lookup stops early at the hole.
    for (auto j = (i + 1) & mask; table_[j].entry != 0; j = (j + 1) & mask) {
        const auto want = home(table_[j].hash);
        // Move j to the hole at i unless its home lies cyclically in (i, j].
        const bool stays = i <= j ? (i < want && want <= j) : (i < want || want <= j);
        if (!stays) {
            table_[i] = table_[j];
            i = j;
        }
    }
    table_[i] = {};
}

} // namespace slotbus::detail
