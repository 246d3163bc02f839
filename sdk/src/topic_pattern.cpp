#include "slotbus/topic_pattern.hpp"

#include "slotbus/error.hpp"
#include "slotbus/slot_name.hpp"

namespace slotbus {
namespace {
bool is_separator(char c)
{
    return c == '\\' || c == '/';
}
} // namespace

topic_pattern topic_pattern::parse(std::string_view text, std::error_code& ec)
{
    // A wildcard is a whole component: `*` anywhere, `**` last. With each `*`
    // swapped for a letter, the one name parser checks everything else
    // (prefix, empty components, characters, length) on a name as long.
    std::string probe(text);
    for (std::size_t i = 0; i < probe.size(); ++i) {
        if (probe[i] != '*')
            continue;
        const bool twice = i + 1 < probe.size() && probe[i + 1] == '*';
        const std::size_t end = i + (twice ? 2 : 1);
        const bool starts = i == 0 || is_separator(probe[i - 1]);
        const bool ends = end == probe.size() || is_separator(probe[end]);
        if (!starts || !ends || (twice && end != probe.size())) {
            ec = error::invalid_name;
            return {};
        }
        probe.replace(i, end - i, end - i, 'x');
        i = end - 1;
    }
    const auto name = slot_name::parse(probe, ec);
    if (ec)
        return {};
    if (name.scope() != name_scope::local) {
        ec = error::invalid_name; // patterns name this host's slots
        return {};
    }
    topic_pattern p;
    std::string_view path = text.substr(text.size() - name.path().size());
    while (true) {
        auto end = path.find_first_of("\\/");
        auto component = path.substr(0, end);
        p.components_.push_back(fold_case(component));
        if (!p.text_.empty())
            p.text_ += '\\';
        p.text_ += component;
        if (end == std::string_view::npos)
            break;
        path.remove_prefix(end + 1);
    }
    return p;
}

topic_pattern topic_pattern::parse(std::string_view text)
{
    std::error_code ec;
    auto p = parse(text, ec);
    throw_if(ec, "slotbus::topic_pattern::parse");
    return p;
}

std::string topic_pattern::key() const
{
    return fold_case(text_);
}

bool topic_pattern::matches(std::string_view name_key) const
{
    // Keys have no empty components, so an empty rest means all were consumed.
    for (const auto& component : components_) {
        if (component == "**")
            return !name_key.empty();
        if (name_key.empty())
            return false;
        const auto at = name_key.find('\\');
        if (component != "*" && component != name_key.substr(0, at))
            return false;
        name_key = at == std::string_view::npos ? std::string_view{} : name_key.substr(at + 1);
    }
    return name_key.empty();
}

} // namespace slotbus
