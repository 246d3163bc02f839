// The host's namespace: slots in a tree of pseudo-directories.
#pragma once

#include "slot.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace slotbus::bus {

/// Slots by name, as a tree whose nodes are path components (case-folded).
/// Directories exist only while a slot lives below them. Every change bumps
/// epoch(), so a cached slot pointer can be checked cheaply.
/// Single-threaded: used only on the routing core's thread.
class namespace_tree {
public:
    /// The slot whose key (a slot_name::key()) this is, or nullptr.
    [[nodiscard]] slot* find(std::string_view key) const;

    /// Adds a slot; the caller checked that its name is free.
    slot& insert(std::unique_ptr<slot> s);

    /// Destroys the slot of that key and prunes directories left empty.
    void erase(std::string_view key);

    [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// Calls f(slot&) for every slot, depth first, children in name order.
    void for_each(const std::function<void(slot&)>& f) const;

    /// The walk of for_each over the slots at or below the key `prefix`
    /// (empty: all), starting after the key `after` (empty: at the first),
    /// until f returns false. A page of a listing costs its own length and
    /// the depth of the tree, not the slots before it.
    void walk(std::string_view prefix, std::string_view after,
              const std::function<bool(slot&)>& f) const;

    /// The order of a walk (depth first, children by name): keys compared
    /// with the separator below every other character.
    [[nodiscard]] static bool walks_before(std::string_view a, std::string_view b);

private:
    struct node {
        // Ordered, so a walk needs no sorting and can start anywhere.
        std::map<std::string, std::unique_ptr<node>, std::less<>> children;
        std::unique_ptr<slot> value;
    };
    static bool walk_below(const node& n, std::string_view after,
                           const std::function<bool(slot&)>& f);

    node root_;
    std::uint64_t epoch_ = 0;
    std::size_t size_ = 0;
};

} // namespace slotbus::bus
