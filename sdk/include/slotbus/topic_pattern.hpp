// Subscription patterns: which names a subscribed slot receives.
#pragma once

#include "slotbus/export.hpp"

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace slotbus {

/// A validated topic pattern: components separated by `\` (or `/`), each a
/// literal, `*` (exactly one component) or — last only — `**` (one or more
/// components: the whole subtree below). `events\orders`, `events\*`,
/// `events\**`, `\\.\mailslot\events\*`. Literals compare without regard to
/// ASCII case. Errors: error::invalid_name (empty components, `*` inside a
/// component, `**` not last, `?`), error::filename_exced_range.
///
/// @code
/// auto p = slotbus::topic_pattern::parse("events/**");
/// assert(p.matches(slotbus::slot_name::parse("events/orders/eu")));
/// @endcode
class SLOTBUS_API topic_pattern {
public:
    static topic_pattern parse(std::string_view text, std::error_code& ec);
    static topic_pattern parse(std::string_view text);

    topic_pattern() = default;

    /// Case-folded components, `*` and `**` included.
    [[nodiscard]] const std::vector<std::string>& components() const noexcept
    {
        return components_;
    }
    /// The pattern as spelled, components joined by `\`.
    [[nodiscard]] const std::string& str() const noexcept { return text_; }
    /// The identity of the pattern: case-folded str().
    [[nodiscard]] std::string key() const;

    /// True when a name (its key(), components joined by `\`) matches.
    [[nodiscard]] bool matches(std::string_view name_key) const;

private:
    std::vector<std::string> components_;
    std::string text_;
};

} // namespace slotbus
