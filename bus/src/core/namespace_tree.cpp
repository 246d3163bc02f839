#include "namespace_tree.hpp"

#include <algorithm>
#include <vector>

namespace slotbus::bus {
namespace {

// Splits a key at '\' without allocating.
template <class F> void for_each_component(std::string_view key, F&& f)
{
    while (true) {
        auto at = key.find('\\');
        if (!f(key.substr(0, at)) || at == std::string_view::npos)
            return;
        key.remove_prefix(at + 1);
    }
}

} // namespace

slot* namespace_tree::find(std::string_view key) const
{
    const node* at = &root_;
    for_each_component(key, [&](std::string_view c) {
        auto it = at->children.find(c);
        at = it == at->children.end() ? nullptr : it->second.get();
        return at != nullptr;
    });
    return at ? at->value.get() : nullptr;
}

slot& namespace_tree::insert(std::unique_ptr<slot> s)
{
    node* at = &root_;
    for_each_component(s->name().key(), [&](std::string_view c) {
        auto& child = at->children[std::string(c)];
        if (!child)
            child = std::make_unique<node>();
        at = child.get();
        return true;
    });
    at->value = std::move(s);
    ++epoch_;
    ++size_;
    return *at->value;
}

void namespace_tree::erase(std::string_view key)
{
    std::vector<std::pair<node*, std::string_view>> trail; // (parent, component) from the root down
    node* at = &root_;
    for_each_component(key, [&](std::string_view c) {
        auto it = at->children.find(c);
        if (it == at->children.end())
            return at = nullptr, false;
        trail.emplace_back(at, it->first);
        at = it->second.get();
        return true;
    });
    if (!at || !at->value)
        return;
    at->value.reset();
    ++epoch_;
    --size_;
    // Prune directories that hold nothing any more, from the leaf up.
    for (auto it = trail.rbegin(); it != trail.rend(); ++it) {
        auto child = it->first->children.find(it->second);
        if (child->second->value || !child->second->children.empty())
            break;
        it->first->children.erase(child);
    }
}

void namespace_tree::for_each(const std::function<void(slot&)>& f) const
{
    walk({}, {}, [&](slot& s) {
        f(s);
        return true;
    });
}

void namespace_tree::walk(std::string_view prefix, std::string_view after,
                          const std::function<bool(slot&)>& f) const
{
    const node* at = &root_;
    if (!prefix.empty())
        for_each_component(prefix, [&](std::string_view c) {
            auto it = at->children.find(c);
            at = it == at->children.end() ? nullptr : it->second.get();
            return at != nullptr;
        });
    if (!at)
        return;
    if (after.empty() || walks_before(after, prefix)) {
        if (at->value && !f(*at->value))
            return;
        walk_below(*at, {}, f);
    } else if (prefix.empty()) {
        walk_below(*at, after, f);
    } else if (after.starts_with(prefix) &&
               (after.size() == prefix.size() || after[prefix.size()] == '\\')) {
        // At or below the prefix: the prefix's slot came first, then below it.
        walk_below(*at, after.substr(std::min(after.size(), prefix.size() + 1)), f);
    } // else after the whole subtree: nothing
}

bool namespace_tree::walks_before(std::string_view a, std::string_view b)
{
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return (x == '\\' ? '\0' : x) < (y == '\\' ? '\0' : y);
    });
}

// The slots below `n` that a walk reaches after the relative key `after`
// (empty: all of them); false when f asked to stop.
bool namespace_tree::walk_below(const node& n, std::string_view after,
                                const std::function<bool(slot&)>& f)
{
    auto it = n.children.begin();
    std::string_view rest;
    if (!after.empty()) {
        const auto cut = after.find('\\');
        const auto first = after.substr(0, cut);
        rest = cut == std::string_view::npos ? std::string_view{} : after.substr(cut + 1);
        it = n.children.lower_bound(first);
        if (it != n.children.end() && it->first == first) {
            // The child on `after`'s path walks at or before `after` itself:
            // only what is below it and after `after`.
            if (!walk_below(*it->second, rest, f))
                return false;
            ++it;
        }
    }
    for (; it != n.children.end(); ++it) {
        if (it->second->value && !f(*it->second->value))
            return false;
        if (!walk_below(*it->second, {}, f))
            return false;
    }
    return true;
}

} // namespace slotbus::bus
