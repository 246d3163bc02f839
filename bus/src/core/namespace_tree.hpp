// The host's namespace: slots in a tree of pseudo-directories.
#pragma once

#include "slot.hpp"
#include "string_hash.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

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

private:
    struct node {
        std::unordered_map<std::string, std::unique_ptr<node>, string_hash, std::equal_to<>>
            children;
        std::unique_ptr<slot> value;
    };

    node root_;
    std::uint64_t epoch_ = 0;
    std::size_t size_ = 0;
};

} // namespace slotbus::bus
