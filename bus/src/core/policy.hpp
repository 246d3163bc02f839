// Who may do what: a connection's identity, as the host decided it, and the
// policy that maps identities to rights on names. Decisions are taken when a
// handle is created, opened, attached or subscribed, never per record.
#pragma once

#include "slotbus/topic_pattern.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::json {
class value;
}

namespace slotbus::bus {

/// What a connection may do: on names (create, write, read) or on the host (list, admin).
enum class right : std::uint8_t {
    create = 1, ///< create (and so own and read) a slot of the name
    write = 2,  ///< open the name for writing
    read = 4,   ///< subscribe a slot to a pattern, attach a duplicate of a slot
    list = 8,   ///< the admin plane's questions: slots, stats, plugins, policy explain
    admin = 16, ///< the admin plane's orders: stop
};
using rights = std::uint8_t;

std::string_view to_string(right r) noexcept;
std::optional<right> right_from_string(std::string_view text) noexcept;
/// True for the rights that are about a name.
constexpr bool names_a_slot(right r) noexcept
{
    return r == right::create || r == right::write || r == right::read;
}

/// Rights on a set of names: what a policy rule or a manifest entry gives.
/// No names: every name.
struct grant {
    rights allowed = 0;
    std::vector<topic_pattern> names;

    /// It gives right `r` on every name `asked` matches (a name is a pattern
    /// of literals).
    [[nodiscard]] bool covers(right r, const topic_pattern& asked) const
    {
        return about(r, asked, true);
    }
    /// It is about right `r` on some name `asked` matches (what a deny needs).
    [[nodiscard]] bool touches(right r, const topic_pattern& asked) const
    {
        return about(r, asked, false);
    }

private:
    [[nodiscard]] bool about(right r, const topic_pattern& asked, bool whole) const;
};
using grant_list = std::vector<grant>;

/// A manifest's "permissions" or a rule's rights: [{"allow": [RIGHT...],
/// "names": [PATTERN...]}, ...]. Empty `why` on success.
grant parse_grant(const boost::json::value& entry, std::string_view key, std::string& why);

/// One connection's identity, decided by the host: the kernel's word for a
/// local peer, the plugin a valid token names, the peer host whose pinned key
/// a link proved. Never what a hello claims.
struct identity {
    std::uint32_t uid = 0, gid = 0, pid = 0;
    std::vector<std::uint32_t> groups; ///< supplementary groups (SO_PEERGROUPS)
    std::string plugin;                ///< set for a connection with a plugin's token
    /// Set for writes from another host's link: its name in the peers file
    /// (then uid and gid are nobody's, and only "host" rules are about it).
    std::string host;
    /// Set for a TLS client: the name its pinned key has in the clients file
    /// (then uid and gid are nobody's, and only "client" rules are about it).
    std::string client;
    /// Set for records a broadcast datagram of this domain brought (then uid
    /// and gid are nobody's, and only "domain" rules are about it: its sender
    /// is whoever could send to the group, or held the domain key).
    std::string domain;
    /// The plugin's manifest "permissions"; null without a plugin.
    std::shared_ptr<const grant_list> permissions;

    [[nodiscard]] bool in_group(std::uint32_t g) const;
    /// Not known by the kernel: a peer host, a TLS client, a domain's broadcast.
    [[nodiscard]] bool from_network() const noexcept
    {
        return !host.empty() || !client.empty() || !domain.empty();
    }
    /// "uid 1000", "plugin metrics", "host beta", "client ci" or "domain wg":
    /// how stats and logs name it.
    [[nodiscard]] std::string str() const;
};

/// A decision and the rule that took it (for `slotbus policy explain` and
/// the log of a denial).
struct decision {
    bool allowed = false;
    std::string by;
};

/// The rules, in order (the first that matches the identity, the right and
/// the name decides), after the names no rule can give away (reserved
/// subtrees) and before the built-in default.
class policy {
public:
    /// The built-in default: `host_uid` and root may do everything, plugins
    /// what their manifests say, anyone else nothing.
    explicit policy(std::uint32_t host_uid) : host_uid_(host_uid) {}

    /// A policy file's text (docs/operator-guide.md, "Security"); nullopt
    /// with `why` saying which rule and field is wrong.
    static std::optional<policy> parse(std::string_view text, std::uint32_t host_uid,
                                       std::string& why);
    static std::optional<policy> load(const std::filesystem::path& file, std::uint32_t host_uid,
                                      std::string& why);

    /// May `who` have `r` on the slot or pattern `name` (its key; ignored for
    /// list and admin)?
    [[nodiscard]] decision decide(const identity& who, right r, const topic_pattern& name) const;
    [[nodiscard]] decision decide(const identity& who, right r) const;

    [[nodiscard]] std::uint32_t host_uid() const noexcept { return host_uid_; }
    /// Where the rules came from: a file, or "" for the built-in default.
    [[nodiscard]] const std::string& source() const noexcept { return source_; }
    [[nodiscard]] std::size_t size() const noexcept { return rules_.size(); }

private:
    struct rule {
        enum class who_kind {
            anyone,
            uid,
            gid,
            plugin,
            host,
            client,
            domain
        } who = who_kind::anyone;
        std::uint32_t id = 0;
        std::string
            name; // a plugin's, a peer host's, a TLS client's or a domain's ("*": every one)
        bool deny = false;
        grant what;
        std::string label; // "rule 3 (group staff)"

        [[nodiscard]] bool matches(const identity& peer) const;
    };

    std::uint32_t host_uid_;
    std::string source_;
    std::vector<rule> rules_;
};

/// The text of a file that decides who may do what (the policy, the peers
/// file): nullopt with `why` unless it is a plain file (not through a
/// symlink) of the host's uid or root that no one else may write — nor,
/// for a `secret` (a domain key), read.
std::optional<std::string> read_trusted_file(const std::filesystem::path& file,
                                             std::uint32_t host_uid, std::string& why,
                                             bool secret = false);

/// A peer host's or a TLS client's name as the peers and clients files and
/// "host" and "client" rules spell it: 1 to 63 letters, digits, '-' and '_'
/// (compared without case).
[[nodiscard]] bool valid_host_name(std::string_view name) noexcept;

/// A name's key as a pattern of literals, for decide().
topic_pattern literal_pattern(std::string_view name_key);

} // namespace slotbus::bus
