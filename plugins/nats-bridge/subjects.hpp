// Slot names and NATS subjects, one to one: `events\orders\eu` is
// `events.orders.eu`, `*` is `*`, and `**` (last only, one or more levels)
// is `>`. Subjects are the names' case-folded form: NATS compares subjects
// byte for byte, slotbus names without regard to ASCII case.
#pragma once

#include "slotbus/topic_pattern.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace slotbus::bridge {

/// The subject of a slot path (`events\orders\eu`, `/` as well as `\`), or
/// nullopt with `why` when a component has what a NATS token may not: `.`,
/// white space, `*` or `>`.
std::optional<std::string> subject_of_name(std::string_view path, std::string& why);
/// The subject pattern of a topic pattern (`events\**` → `events.>`).
std::optional<std::string> subject_of_pattern(const topic_pattern& pattern, std::string& why);
/// A subject pattern as written in the config, checked: tokens not empty,
/// `*` and `>` whole tokens only, `>` last; nullopt with `why`.
std::optional<std::string> checked_subject_pattern(std::string_view subject, std::string& why);
/// The local path a message's subject goes to (`events.orders.eu` →
/// `events\orders\eu`), or nullopt with `why` when it is no slot name.
std::optional<std::string> name_of_subject(std::string_view subject, std::string& why);

} // namespace slotbus::bridge
