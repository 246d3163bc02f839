// Mailslot names: the one validating parser every part of slotbus uses.
#pragma once

#include "slotbus/export.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace slotbus {

/// The longest path a name may carry (the part after `mailslot\`). With the
/// 13 characters of `\\.\mailslot\` it keeps a name within Windows' MAX_PATH
/// (260, including the terminator). Longer: error::filename_exced_range.
inline constexpr std::size_t max_path_length = 246;

/// Where a name points.
enum class name_scope {
    local,     ///< `\\.\mailslot\p` or the short form `p`: this machine
    remote,    ///< `\\NAME\mailslot\p`: one host, or every host of a domain
    broadcast, ///< `\\*\mailslot\p`: every host of the primary domain
};

/// A validated mailslot name.
///
/// Accepted spellings: `\\.\mailslot\taxes\sue`, `\\HOST\mailslot\…`,
/// `\\*\mailslot\…`, `/` in place of any `\`, and the short form `taxes/sue`
/// (local). Components are separated by `\` and may not be empty, `.` or
/// `..`, nor contain `*`, `?` or control characters. Names compare without
/// regard to ASCII case; the spelling given is kept for display.
///
/// Errors: error::invalid_name, error::filename_exced_range.
///
/// @code
/// auto name = slotbus::slot_name::parse("taxes/sue");
/// assert(name.str() == R"(\\.\mailslot\taxes\sue)");
/// @endcode
class SLOTBUS_API slot_name {
public:
    /// Parses any accepted spelling; on failure sets ec and returns an empty name.
    static slot_name parse(std::string_view text, std::error_code& ec);
    /// Parses any accepted spelling; throws slotbus::system_error on failure.
    static slot_name parse(std::string_view text);

    slot_name() = default;

    [[nodiscard]] name_scope scope() const noexcept { return scope_; }
    /// `.`, `*` or the host/domain name as spelled.
    [[nodiscard]] const std::string& server() const noexcept { return server_; }
    /// The components joined by `\`, as spelled: `taxes\sue`.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// The identity of the path: ASCII-lowercased path(). Equal keys, same slot.
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    /// The full name: `\\.\mailslot\taxes\sue`.
    [[nodiscard]] std::string str() const;
    [[nodiscard]] bool empty() const noexcept { return path_.empty(); }

    friend bool operator==(const slot_name& a, const slot_name& b) noexcept;

private:
    name_scope scope_ = name_scope::local;
    std::string server_ = ".";
    std::string path_;
    std::string key_;
};

/// ASCII lower-casing, the case folding names use.
SLOTBUS_API std::string fold_case(std::string_view text);

/// Well-formed UTF-8: no stray continuation bytes, overlong forms, surrogates
/// or code points past U+10FFFF. Names and patterns must be.
SLOTBUS_API bool is_valid_utf8(std::string_view text) noexcept;
/// `text` with each ill-formed sequence replaced by U+FFFD: for showing what
/// a peer claimed (a client name) where only valid text may go (JSON).
SLOTBUS_API std::string to_valid_utf8(std::string_view text);

} // namespace slotbus
