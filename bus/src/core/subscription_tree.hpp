// Subscriptions by pattern, as a trie keyed by components, so that routing a
// name costs the paths that can match it, not a scan of every pattern.
#pragma once

#include "string_hash.hpp"

#include "slotbus/topic_pattern.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace slotbus::bus {

class slot;

/// Single-threaded: used only on the routing core's thread.
class subscription_tree {
public:
    void add(const topic_pattern& pattern, slot* subscriber);
    /// False when that slot had no such subscription.
    bool remove(const topic_pattern& pattern, slot* subscriber);

    /// Calls f(slot*) for each subscription matching a name key (a slot may
    /// come more than once if several of its patterns match).
    template <class F> void match(std::string_view key, F&& f) const { match_from(root_, key, f); }

    /// True when any subscription matches the key.
    [[nodiscard]] bool any_match(std::string_view key) const;
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    struct node {
        std::unordered_map<std::string, std::unique_ptr<node>, string_hash, std::equal_to<>>
            children;
        std::unique_ptr<node> star; // `*` at this level
        std::vector<slot*> here;    // patterns that end at this node
        std::vector<slot*> below;   // patterns ending `**` after this node
        [[nodiscard]] bool empty() const
        {
            return children.empty() && !star && here.empty() && below.empty();
        }
    };

    template <class F> static void match_from(const node& n, std::string_view key, F& f)
    {
        // Here key is what is left of the name: at least one component.
        for (slot* s : n.below)
            f(s);
        const auto at = key.find('\\');
        const auto component = key.substr(0, at);
        const auto rest = at == std::string_view::npos ? std::string_view{} : key.substr(at + 1);
        auto visit = [&](const node& child) {
            if (rest.empty())
                for (slot* s : child.here)
                    f(s);
            else
                match_from(child, rest, f);
        };
        if (auto it = n.children.find(component); it != n.children.end())
            visit(*it->second);
        if (n.star)
            visit(*n.star);
    }

    node root_;
    std::size_t size_ = 0;
};

} // namespace slotbus::bus
