#include "subscription_tree.hpp"

#include <algorithm>

namespace slotbus::bus {

void subscription_tree::add(const topic_pattern& pattern, slot* subscriber)
{
    node* at = &root_;
    const auto& parts = pattern.components();
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (parts[i] == "**") {
            at->below.push_back(subscriber);
            ++size_;
            return;
        }
        auto& next = parts[i] == "*" ? at->star : at->children[parts[i]];
        if (!next)
            next = std::make_unique<node>();
        at = next.get();
    }
    at->here.push_back(subscriber);
    ++size_;
}

bool subscription_tree::remove(const topic_pattern& pattern, slot* subscriber)
{
    // Walk down, remembering the way, then prune nodes left empty.
    std::vector<std::pair<node*, const std::string*>> trail;
    node* at = &root_;
    const auto& parts = pattern.components();
    std::vector<slot*>* list = nullptr;
    for (std::size_t i = 0; i <= parts.size(); ++i) {
        if (i == parts.size()) {
            list = &at->here;
            break;
        }
        if (parts[i] == "**") {
            list = &at->below;
            break;
        }
        node* next = nullptr;
        if (parts[i] == "*") {
            next = at->star.get();
        } else if (auto it = at->children.find(parts[i]); it != at->children.end()) {
            next = it->second.get();
        }
        if (!next)
            return false;
        trail.emplace_back(at, &parts[i]);
        at = next;
    }
    auto it = std::find(list->begin(), list->end(), subscriber);
    if (it == list->end())
        return false;
    list->erase(it);
    --size_;
    for (auto step = trail.rbegin(); step != trail.rend(); ++step) {
        node* parent = step->first;
        const std::string& part = *step->second;
        if (part == "*") {
            if (!parent->star->empty())
                break;
            parent->star.reset();
        } else {
            auto child = parent->children.find(part);
            if (!child->second->empty())
                break;
            parent->children.erase(child);
        }
    }
    return true;
}

bool subscription_tree::any_match(std::string_view key) const
{
    bool found = false;
    match(key, [&](slot*) { found = true; });
    return found;
}

} // namespace slotbus::bus
