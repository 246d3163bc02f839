#include "slotbus/detail/recent_keys.hpp"

#include <bit>
#include <functional>

namespace slotbus::detail {

recent_keys::recent_keys(std::size_t capacity)
    : ring_(std::max<std::size_t>(capacity, 1)),
      // At most half full: probes stay short.
      table_(std::bit_ceil(2 * ring_.size()), 0)
{
}

bool recent_keys::seen_before(std::string_view a, std::string_view b)
{
    key_.assign(a).append(1, '\n').append(b);
    const auto hash = std::hash<std::string_view>{}(key_);
    for (auto i = home(hash);; i = (i + 1) & (table_.size() - 1)) {
        const auto at = table_[i];
        if (at == 0)
            break;
        const entry& e = ring_[at - 1];
        if (e.hash == hash && e.key == key_)
            return true;
    }
    if (used_ == ring_.size())
        forget(static_cast<std::uint32_t>(next_)); // the oldest, whose slot this is
    else
        ++used_;
    entry& slot = ring_[next_];
    std::swap(slot.key, key_); // key_ keeps the old key's storage for the next one
    slot.hash = hash;
    auto i = home(hash);
    while (table_[i] != 0)
        i = (i + 1) & (table_.size() - 1);
    table_[i] = static_cast<std::uint32_t>(next_ + 1);
    next_ = (next_ + 1) % ring_.size();
    return false;
}

void recent_keys::forget(std::uint32_t ring_index)
{
    const auto mask = table_.size() - 1;
    auto i = home(ring_[ring_index].hash);
    while (table_[i] != ring_index + 1)
        i = (i + 1) & mask;
    // Backward-shift deletion: later entries of the probe run move up, so
    // no lookup stops early at the hole.
    for (auto j = (i + 1) & mask; table_[j] != 0; j = (j + 1) & mask) {
        const auto want = home(ring_[table_[j] - 1].hash);
        // Move j to the hole at i unless its home lies cyclically in (i, j].
        const bool stays = i <= j ? (i < want && want <= j) : (i < want || want <= j);
        if (!stays) {
            table_[i] = table_[j];
            i = j;
        }
    }
    table_[i] = 0;
}

} // namespace slotbus::detail
