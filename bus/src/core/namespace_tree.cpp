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
    std::function<void(const node&)> walk = [&](const node& n) {
        if (n.value)
            f(*n.value);
        std::vector<const std::string*> names;
        for (const auto& [name, child] : n.children)
            names.push_back(&name);
        std::sort(names.begin(), names.end(), [](auto a, auto b) { return *a < *b; });
        for (const auto* name : names)
            walk(*n.children.find(*name)->second);
    };
    walk(root_);
}

} // namespace slotbus::bus
