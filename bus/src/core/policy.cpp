#include "policy.hpp"

#include "slotbus/slot_name.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace slotbus::bus {

namespace json = boost::json;

namespace {

constexpr std::pair<right, std::string_view> right_names[] = {
    {right::create, "create"}, {right::write, "write"}, {right::read, "read"},
    {right::list, "list"},     {right::admin, "admin"},
};

/// Every name `asked` matches, `rule` matches too. Both are component lists
/// in which `*` is one component and a last `**` one or more.
bool pattern_covers(const std::vector<std::string>& rule, const std::vector<std::string>& asked)
{
    std::size_t i = 0;
    for (; i < rule.size(); ++i) {
        if (rule[i] == "**")
            return i < asked.size(); // one or more components left, whatever they are
        if (i >= asked.size() || asked[i] == "**")
            return false; // asked goes on deeper (or ends) where the rule does not
        if (rule[i] != "*" && (asked[i] == "*" || rule[i] != asked[i]))
            return false;
    }
    return i == asked.size();
}

/// Some name matches both (component lists as for pattern_covers).
bool patterns_overlap(const std::vector<std::string>& a, const std::vector<std::string>& b)
{
    for (std::size_t i = 0;; ++i) {
        const bool a_done = i == a.size(), b_done = i == b.size();
        if (a_done || b_done)
            return a_done && b_done;
        if (a[i] == "**" || b[i] == "**")
            return true; // one or more components, and the other has at least one left
        if (a[i] != "*" && b[i] != "*" && a[i] != b[i])
            return false;
    }
}

bool under(const topic_pattern& asked, std::string_view first, std::string_view second = {})
{
    const auto& c = asked.components();
    if (c.empty() || c[0] != first)
        return false;
    return second.empty() || (c.size() >= 2 && c[1] == second);
}

std::optional<std::uint32_t> user_id(std::string_view name)
{
    const std::string n(name);
    const passwd* p = ::getpwnam(n.c_str());
    return p ? std::optional<std::uint32_t>(p->pw_uid) : std::nullopt;
}

std::optional<std::uint32_t> group_id(std::string_view name)
{
    const std::string n(name);
    const group* g = ::getgrnam(n.c_str());
    return g ? std::optional<std::uint32_t>(g->gr_gid) : std::nullopt;
}

} // namespace

std::string_view to_string(right r) noexcept
{
    for (const auto& [value, name] : right_names)
        if (value == r)
            return name;
    return "?";
}

std::optional<right> right_from_string(std::string_view text) noexcept
{
    for (const auto& [value, name] : right_names)
        if (name == text)
            return value;
    return std::nullopt;
}

bool grant::about(right r, const topic_pattern& asked, bool whole) const
{
    if ((allowed & static_cast<rights>(r)) == 0)
        return false;
    if (names.empty() || !names_a_slot(r))
        return true;
    return std::any_of(names.begin(), names.end(), [&](const topic_pattern& p) {
        return whole ? pattern_covers(p.components(), asked.components())
                     : patterns_overlap(p.components(), asked.components());
    });
}

grant parse_grant(const json::value& entry, std::string_view key, std::string& why)
{
    grant g;
    const auto* o = entry.if_object();
    const auto* list = o ? o->if_contains(key) : nullptr;
    if (!list || !list->is_array() || list->as_array().empty()) {
        why = "needs \"" + std::string(key) +
              "\": a list of rights (create, write, read, list, "
              "admin)";
        return g;
    }
    for (const auto& v : list->as_array()) {
        const auto r = v.is_string() ? right_from_string(v.get_string()) : std::nullopt;
        if (!r) {
            why = "\"" + std::string(key) + "\" names " + json::serialize(v) +
                  ", not a right (create, write, read, list, admin)";
            return g;
        }
        g.allowed |= static_cast<rights>(*r);
    }
    if (const auto* names = o->if_contains("names")) {
        if (!names->is_array() || names->as_array().empty()) {
            why = "\"names\" must be a list of patterns (leave it out for every name)";
            return g;
        }
        for (const auto& v : names->as_array()) {
            std::error_code ec;
            auto p = v.is_string() ? topic_pattern::parse(v.get_string(), ec) : topic_pattern{};
            if (!v.is_string() || ec) {
                why = "\"names\" holds " + json::serialize(v) + ", not a topic pattern";
                return g;
            }
            g.names.push_back(std::move(p));
        }
    }
    return g;
}

bool identity::in_group(std::uint32_t g) const
{
    return gid == g || std::find(groups.begin(), groups.end(), g) != groups.end();
}

std::string identity::str() const
{
    if (!host.empty())
        return "host " + host;
    if (!client.empty())
        return "client " + client;
    if (!domain.empty())
        return "domain " + domain;
    return plugin.empty() ? "uid " + std::to_string(uid) : "plugin " + plugin;
}

bool policy::rule::matches(const identity& peer) const
{
    // A peer host is only ever what "host" rules say: "anyone" means anyone
    // on this machine, never the network.
    if (!peer.host.empty())
        return who == who_kind::host && (name == "*" || name == peer.host);
    // So is a TLS client (its uid is nobody's, which no uid rule should give it).
    if (!peer.client.empty())
        return who == who_kind::client && (name == "*" || name == peer.client);
    // And a domain's broadcasts.
    if (!peer.domain.empty())
        return who == who_kind::domain && (name == "*" || name == peer.domain);
    switch (who) {
    case who_kind::anyone:
        return true;
    case who_kind::uid: // a plugin is its plugin name, whatever uid it runs as
        return peer.plugin.empty() && peer.uid == id;
    case who_kind::gid:
        return peer.plugin.empty() && peer.in_group(id);
    case who_kind::plugin:
        return peer.plugin == name;
    case who_kind::host:
    case who_kind::client:
    case who_kind::domain:
        return false;
    }
    return false;
}

std::optional<policy> policy::parse(std::string_view text, std::uint32_t host_uid, std::string& why)
{
    boost::system::error_code ec;
    const auto doc = json::parse(text, ec);
    const auto* top = ec ? nullptr : doc.if_object();
    const auto* rules = top ? top->if_contains("rules") : nullptr;
    if (!rules || !rules->is_array() || top->size() != 1) {
        why = ec ? "not valid JSON: " + ec.message()
                 : "must be a JSON object with one field, \"rules\": a list of rules";
        return std::nullopt;
    }
    policy p(host_uid);
    std::size_t n = 0;
    for (const auto& value : rules->as_array()) {
        ++n;
        auto fail = [&](const std::string& what) {
            why = "rule " + std::to_string(n) + ": " + what;
            return std::nullopt;
        };
        const auto* o = value.if_object();
        if (!o)
            return fail("not a JSON object");
        for (const auto& [key, field] : *o)
            if (key != "uid" && key != "user" && key != "gid" && key != "group" &&
                key != "plugin" && key != "host" && key != "client" && key != "domain" &&
                key != "anyone" && key != "allow" && key != "deny" && key != "names")
                return fail("unknown field \"" + std::string(key) + "\" (a typo?)");
        rule r; // NOLINT: the member type, not a shadow
        int whos = 0;
        std::string who_text;
        // Who the rule is about: a number, or a name this machine knows.
        struct id_field {
            std::string_view key;
            rule::who_kind kind;
            std::optional<std::uint32_t> (*lookup)(std::string_view); // null: a number
        };
        static constexpr id_field id_fields[] = {{"uid", rule::who_kind::uid, nullptr},
                                                 {"gid", rule::who_kind::gid, nullptr},
                                                 {"user", rule::who_kind::uid, &user_id},
                                                 {"group", rule::who_kind::gid, &group_id}};
        for (const auto& field : id_fields) {
            const auto* v = o->if_contains(field.key);
            if (!v)
                continue;
            ++whos;
            const std::string key(field.key);
            std::optional<std::uint32_t> id;
            if (!field.lookup && v->is_int64() && v->get_int64() >= 0 &&
                v->get_int64() < 0xffffffffLL) // (id_t)-1 is no one's
                id = static_cast<std::uint32_t>(v->get_int64());
            else if (field.lookup && v->is_string())
                id = field.lookup(v->get_string());
            if (!id)
                return fail("\"" + key + "\" " +
                            (field.lookup
                                 ? json::serialize(*v) + " is no " + key + " of this machine"
                                 : std::string("must be a number")));
            r.who = field.kind;
            r.id = *id;
            who_text =
                key + " " + (field.lookup ? std::string(v->get_string()) : std::to_string(*id));
        }
        if (const auto* v = o->if_contains("plugin")) {
            ++whos;
            const auto valid = [](std::string_view name) {
                return !name.empty() && name.size() <= 64 &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                                  c == '_';
                       });
            };
            if (!v->is_string() || !valid(v->get_string()))
                return fail("\"plugin\" must be a plugin's name (a-z 0-9 - _, as in its "
                            "manifest)");
            r.who = rule::who_kind::plugin;
            r.name = std::string(v->get_string());
            who_text = "plugin " + r.name;
        }
        if (const auto* v = o->if_contains("host")) {
            ++whos;
            if (!v->is_string() || (v->get_string() != "*" && !valid_host_name(v->get_string())))
                return fail("\"host\" must be a peer's name as in the peers file (letters, "
                            "digits, - and _), or \"*\" for every peer");
            r.who = rule::who_kind::host;
            r.name = fold_case(v->get_string());
            who_text = "host " + r.name;
        }
        if (const auto* v = o->if_contains("client")) {
            ++whos;
            if (!v->is_string() || (v->get_string() != "*" && !valid_host_name(v->get_string())))
                return fail("\"client\" must be a TLS client's name as in the clients file "
                            "(letters, digits, - and _), or \"*\" for every client");
            r.who = rule::who_kind::client;
            r.name = fold_case(v->get_string());
            who_text = "client " + r.name;
        }
        if (const auto* v = o->if_contains("domain")) {
            ++whos;
            if (!v->is_string() || (v->get_string() != "*" && !valid_host_name(v->get_string())))
                return fail("\"domain\" must be a domain's name (letters, digits, - and _), "
                            "or \"*\" for every domain");
            r.who = rule::who_kind::domain;
            r.name = fold_case(v->get_string());
            who_text = "domain " + r.name;
        }
        if (const auto* v = o->if_contains("anyone")) {
            ++whos;
            if (!v->is_bool() || !v->get_bool())
                return fail("\"anyone\" must be true");
            who_text = "anyone";
        }
        if (whos != 1)
            return fail("needs exactly one of \"uid\", \"user\", \"gid\", \"group\", "
                        "\"plugin\", \"host\", \"client\", \"domain\", \"anyone\"");
        const bool allows = o->contains("allow"), denies = o->contains("deny");
        if (allows == denies)
            return fail("needs exactly one of \"allow\" and \"deny\"");
        r.deny = denies;
        std::string grant_why;
        r.what = parse_grant(value, denies ? "deny" : "allow", grant_why);
        if (!grant_why.empty())
            return fail(grant_why);
        r.label = "rule " + std::to_string(n) + " (" + who_text + ")";
        p.rules_.push_back(std::move(r));
    }
    return p;
}

std::optional<std::string> read_trusted_file(const std::filesystem::path& file,
                                             std::uint32_t host_uid, std::string& why, bool secret)
{
    // Whoever may change the file may change what it decides. Checked on
    // what was opened, never through a symlink.
    const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        why = "cannot be read (or is not a plain file)";
        if (fd >= 0)
            ::close(fd);
        return std::nullopt;
    }
    if ((st.st_uid != host_uid && st.st_uid != 0) || (st.st_mode & 022) != 0) {
        ::close(fd);
        why = "may be changed by others (it must belong to the host's uid or root, and be "
              "writable by its owner only)";
        return std::nullopt;
    }
    if (secret && (st.st_mode & 077) != 0) {
        ::close(fd);
        why = "may be read by others (a secret: make it mode 0600)";
        return std::nullopt;
    }
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;)
        text.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    return text;
}

std::optional<policy> policy::load(const std::filesystem::path& file, std::uint32_t host_uid,
                                   std::string& why)
{
    const auto text = read_trusted_file(file, host_uid, why);
    if (!text)
        return std::nullopt;
    auto p = parse(*text, host_uid, why);
    if (p)
        p->source_ = file.string();
    return p;
}

decision policy::decide(const identity& who, right r) const
{
    return decide(who, r, topic_pattern{});
}

decision policy::decide(const identity& who, right r, const topic_pattern& name) const
{
    const bool on_name = names_a_slot(r);
    // Names nobody can give away: the host's own subtree, and each plugin's.
    if (on_name && !who.plugin.empty() && under(name, "plugins", who.plugin))
        return {true, "built-in: plugins\\" + who.plugin + "\\** is the plugin's own"};
    if (r == right::create) {
        if (under(name, "plugins") && name.components().size() >= 2)
            return {false, "reserved: plugins\\" + name.components()[1] +
                               "\\** is created by plugin " + name.components()[1] + " only"};
        const bool manifest_allows =
            who.permissions && std::any_of(who.permissions->begin(), who.permissions->end(),
                                           [&](const grant& g) { return g.covers(r, name); });
        const bool host_side = who.from_network()   ? false
                               : who.plugin.empty() ? who.uid == host_uid_ || who.uid == 0
                                                    : manifest_allows;
        if (under(name, "slotbus") && !host_side)
            return {false, "reserved: slotbus\\** is created by the host's uid and by plugins "
                           "whose manifest names it only"};
    }
    // An allow rule must give every name asked for; a deny rule takes any
    // of them away (a subscription to events\** under a deny of
    // events\payments\** would receive payments).
    for (const auto& entry : rules_)
        if (entry.matches(who) &&
            (entry.deny ? entry.what.touches(r, name) : entry.what.covers(r, name)))
            return {!entry.deny, source_.empty() ? entry.label : source_ + ": " + entry.label};
    if (!who.plugin.empty()) {
        if (who.permissions)
            for (std::size_t i = 0; i < who.permissions->size(); ++i)
                if ((*who.permissions)[i].covers(r, name))
                    return {true, "manifest of plugin " + who.plugin + ", permission " +
                                      std::to_string(i + 1)};
        return {false, "plugin " + who.plugin + ": beyond its manifest's permissions"};
    }
    if (!who.host.empty())
        return {false, "built-in default: host " + who.host +
                           " may write nothing no \"host\" rule allows"};
    if (!who.client.empty())
        return {false, "built-in default: client " + who.client +
                           " may do nothing no \"client\" rule allows"};
    if (!who.domain.empty())
        return {false, "built-in default: broadcasts of domain " + who.domain +
                           " may write nothing no \"domain\" rule allows"};
    if (who.uid == host_uid_ || who.uid == 0)
        return {true, who.uid == 0 ? "built-in: root" : "built-in: the host's own uid"};
    return {false,
            "built-in default: uid " + std::to_string(who.uid) + " may do nothing no rule allows"};
}

bool valid_host_name(std::string_view name) noexcept
{
    return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
    });
}

topic_pattern literal_pattern(std::string_view name_key)
{
    std::error_code ec; // a name's key is always a pattern of literals
    return topic_pattern::parse(name_key, ec);
}

} // namespace slotbus::bus
