#define BOOST_TEST_MODULE policy
// The policy on its own: who a rule matches, which names a pattern covers,
// what is reserved, and what a bad file is told.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/policy.hpp"

using namespace slotbus;
using namespace slotbus::bus;

namespace {

constexpr std::uint32_t host = 1000, other = 1001, monitor = 1002, staff = 50;

policy parsed(std::string_view text)
{
    std::string why;
    auto p = policy::parse(text, host, why);
    BOOST_REQUIRE_MESSAGE(p, why);
    return *p;
}

std::string refused(std::string_view text)
{
    std::string why;
    BOOST_TEST(!policy::parse(text, host, why));
    return why;
}

identity uid(std::uint32_t u, std::vector<std::uint32_t> groups = {})
{
    identity who;
    who.uid = u;
    who.gid = u;
    who.groups = std::move(groups);
    return who;
}

identity plugin(std::string name, grant_list permissions = {})
{
    identity who;
    who.uid = host;
    who.plugin = std::move(name);
    who.permissions = std::make_shared<const grant_list>(std::move(permissions));
    return who;
}

bool may(const policy& p, const identity& who, right r, std::string_view name = {})
{
    return p.decide(who, r, name.empty() ? topic_pattern{} : topic_pattern::parse(name)).allowed;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_default_gives_the_hosts_uid_and_root_everything_and_others_nothing)
{
    const policy p(host);
    for (auto r : {right::create, right::write, right::read}) {
        BOOST_TEST(may(p, uid(host), r, "events/x"));
        BOOST_TEST(may(p, uid(0), r, "events/x"));
        BOOST_TEST(!may(p, uid(other), r, "events/x"));
    }
    BOOST_TEST(may(p, uid(host), right::admin));
    BOOST_TEST(!may(p, uid(other), right::list));
    BOOST_TEST(
        p.decide(uid(other), right::write, topic_pattern::parse("a")).by.find("built-in default") !=
        std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_first_rule_that_matches_decides)
{
    const auto p = parsed(R"({"rules": [
        {"uid": 1001, "deny": ["write"], "names": ["events/payments/**"]},
        {"gid": 50, "allow": ["write", "read"], "names": ["events/**"]},
        {"uid": 1002, "allow": ["read", "list"]}
    ]})");
    const auto member = uid(other, {staff});
    BOOST_TEST(may(p, member, right::write, "events/orders"));
    BOOST_TEST(!may(p, member, right::write, "events/payments/eu")); // rule 1 came first
    BOOST_TEST(may(p, member, right::read, "events/payments/*"));
    BOOST_TEST(!may(p, member, right::create, "events/orders"));    // no rule gives create
    BOOST_TEST(!may(p, member, right::write, "events"));            // ** is one or more below
    BOOST_TEST(!may(p, uid(other), right::write, "events/orders")); // not in group 50
    BOOST_TEST(p.decide(member, right::write, topic_pattern::parse("events/payments/eu")).by ==
               "rule 1 (uid 1001)");
    // A monitoring user: reads anything, lists, and may not stop the host.
    BOOST_TEST(may(p, uid(monitor), right::read, "**"));
    BOOST_TEST(may(p, uid(monitor), right::list));
    BOOST_TEST(!may(p, uid(monitor), right::admin));
    BOOST_TEST(!may(p, uid(monitor), right::write, "events/x"));
    // The host's uid still has the built-in default after the rules.
    BOOST_TEST(may(p, uid(host), right::admin));
}

BOOST_AUTO_TEST_CASE(a_read_right_covers_a_pattern_only_when_it_covers_every_name_it_matches)
{
    const auto p = parsed(R"({"rules": [{"uid": 1001, "allow": ["read"],
                                         "names": ["events/*/eu", "logs/**"]}]})");
    const auto who = uid(other);
    BOOST_TEST(may(p, who, right::read, "events/orders/eu"));
    BOOST_TEST(may(p, who, right::read, "events/*/eu"));
    BOOST_TEST(!may(p, who, right::read, "events/**"));
    BOOST_TEST(!may(p, who, right::read, "events/*/*"));
    BOOST_TEST(!may(p, who, right::read, "**"));
    BOOST_TEST(may(p, who, right::read, "logs/**"));
    BOOST_TEST(may(p, who, right::read, "logs/*/x"));
    BOOST_TEST(may(p, who, right::read, "LOGS/App")); // names compare without case
    BOOST_TEST(!may(p, who, right::read, "logs"));
}

BOOST_AUTO_TEST_CASE(reserved_subtrees_are_created_by_their_owners_only)
{
    const auto p = parsed(R"({"rules": [{"uid": 1001, "allow": ["create"]}]})");
    // A rule that gives every name still gives no reserved one.
    BOOST_TEST(may(p, uid(other), right::create, "events/x"));
    BOOST_TEST(!may(p, uid(other), right::create, "plugins/journal/inbox"));
    BOOST_TEST(!may(p, uid(host), right::create, "plugins/journal"));
    BOOST_TEST(!may(p, uid(other), right::create, "slotbus/cli/tail-1"));
    BOOST_TEST(may(p, uid(host), right::create, "slotbus/cli/tail-1"));
    // A plugin has its own subtree, and nothing else it was not given.
    const auto journal = plugin("journal");
    BOOST_TEST(may(p, journal, right::create, "plugins/journal/inbox"));
    BOOST_TEST(may(p, journal, right::read, "plugins/journal/**"));
    BOOST_TEST(!may(p, journal, right::create, "plugins/metrics/inbox"));
    BOOST_TEST(!may(p, journal, right::create, "slotbus/journal/journal"));
    BOOST_TEST(!may(p, journal, right::write, "events/x"));
    BOOST_TEST(p.decide(journal, right::write, topic_pattern::parse("events/x"))
                   .by.find("beyond its manifest") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_manifest_gives_a_plugin_what_it_names_and_a_rule_can_take_it_away)
{
    grant writes{static_cast<rights>(right::write), {topic_pattern::parse("events/**")}};
    grant own{static_cast<rights>(right::create), {topic_pattern::parse("slotbus/journal/**")}};
    grant lists{static_cast<rights>(right::list), {}};
    const auto metrics = plugin("metrics", {writes, own, lists});
    const policy none(host);
    BOOST_TEST(may(none, metrics, right::write, "events/x"));
    BOOST_TEST(!may(none, metrics, right::read, "events/x"));
    BOOST_TEST(may(none, metrics, right::create, "slotbus/journal/x")); // named: allowed
    BOOST_TEST(may(none, metrics, right::list));
    BOOST_TEST(!may(none, metrics, right::admin));
    const auto p = parsed(R"({"rules": [{"plugin": "metrics", "deny": ["write"]}]})");
    BOOST_TEST(!may(p, metrics, right::write, "events/x"));
    // A uid rule is not about plugins, whatever uid they run as.
    const auto q = parsed(R"({"rules": [{"uid": 1000, "allow": ["read"]}]})");
    BOOST_TEST(!may(q, metrics, right::read, "events/x"));
}

BOOST_AUTO_TEST_CASE(a_bad_policy_says_which_rule_and_field)
{
    BOOST_TEST(refused("{ nope").find("not valid JSON") == 0u);
    BOOST_TEST(refused(R"({"rule": []})").find("one field, \"rules\"") != std::string::npos);
    BOOST_TEST(refused(R"({"rules": [{"uid": 1, "allow": ["wrte"]}]})") ==
               "rule 1: \"allow\" names \"wrte\", not a right (create, write, read, list, admin)");
    BOOST_TEST(refused(R"({"rules": [{"uid": 1, "allow": ["read"]}, {"allow": ["read"]}]})")
                   .find("rule 2: needs exactly one of \"uid\"") == 0u);
    BOOST_TEST(refused(R"({"rules": [{"uid": 1, "gid": 2, "allow": ["read"]}]})")
                   .find("rule 1: needs exactly one of") == 0u);
    BOOST_TEST(refused(R"({"rules": [{"uid": 1, "allow": ["read"], "deny": ["read"]}]})") ==
               "rule 1: needs exactly one of \"allow\" and \"deny\"");
    BOOST_TEST(refused(R"({"rules": [{"uid": 1, "allow": ["read"], "names": ["a/**/b"]}]})")
                   .find("not a topic pattern") != std::string::npos);
    BOOST_TEST(refused(R"({"rules": [{"uid": 1, "allow": ["read"], "nmaes": ["a"]}]})") ==
               "rule 1: unknown field \"nmaes\" (a typo?)");
    BOOST_TEST(refused(R"({"rules": [{"user": "no-such-user-here", "allow": ["read"]}]})")
                   .find("is no user of this machine") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(users_and_groups_are_looked_up_by_name)
{
    const auto p = parsed(R"({"rules": [{"user": "root", "deny": ["admin"]},
                                        {"group": "root", "allow": ["list"]}]})");
    BOOST_TEST(!may(p, uid(0), right::admin));
    BOOST_TEST(may(p, uid(4242, {0}), right::list));
    BOOST_TEST(!may(p, uid(4242, {1}), right::list));
}

BOOST_AUTO_TEST_CASE(the_operator_guides_examples_say_what_the_guide_says)
{
    std::string why;
    const auto shared = policy::load(SLOTBUS_SOURCE_DIR "/docs/examples/policy-shared-group.json",
                                     ::geteuid(), why);
    BOOST_REQUIRE_MESSAGE(shared, why);
    const auto member = uid(2001, {1500});
    BOOST_TEST(may(*shared, member, right::write, "events/orders/eu"));
    BOOST_TEST(!may(*shared, member, right::write, "events/payments/eu"));
    BOOST_TEST(may(*shared, member, right::read, "events/payments/*"));
    BOOST_TEST(may(*shared, member, right::create, "apps/billing/inbox"));
    BOOST_TEST(!may(*shared, member, right::create, "events/x"));
    BOOST_TEST(may(*shared, member, right::list));
    BOOST_TEST(!may(*shared, member, right::admin));
    BOOST_TEST(!may(*shared, uid(2002), right::read, "events/x")); // not in the group

    const auto monitoring =
        policy::load(SLOTBUS_SOURCE_DIR "/docs/examples/policy-monitoring.json", ::geteuid(), why);
    BOOST_REQUIRE_MESSAGE(monitoring, why);
    BOOST_TEST(may(*monitoring, uid(1600), right::read, "**"));
    BOOST_TEST(may(*monitoring, uid(1600), right::list));
    BOOST_TEST(may(*monitoring, uid(1600), right::create, "monitor/tail"));
    BOOST_TEST(!may(*monitoring, uid(1600), right::write, "events/x"));
    BOOST_TEST(!may(*monitoring, uid(1600), right::admin));
    BOOST_TEST(!may(*monitoring, uid(1600), right::create, "slotbus/cli/tail-1"));
}

BOOST_AUTO_TEST_CASE(a_policy_file_others_may_change_is_refused)
{
    const auto file = std::filesystem::temp_directory_path() /
                      ("slotbus-policy-" + std::to_string(::getpid()) + ".json");
    std::ofstream(file) << R"({"rules": []})";
    std::string why;
    BOOST_TEST(policy::load(file, ::geteuid(), why).has_value(), why);
    std::filesystem::permissions(file, std::filesystem::perms::all);
    BOOST_TEST(!policy::load(file, ::geteuid(), why));
    BOOST_TEST(why.find("may be changed by others") == 0u, why);
    std::filesystem::remove(file);
}

BOOST_AUTO_TEST_CASE(a_deny_takes_away_any_name_it_touches_not_only_the_ones_it_covers)
{
    const auto p = parsed(R"({"rules": [
        {"gid": 50, "deny": ["read"], "names": ["events/payments/**"]},
        {"gid": 50, "allow": ["read"], "names": ["events/**", "logs/*/x"]},
        {"gid": 50, "deny": ["write"], "names": ["*/secret"]},
        {"gid": 50, "allow": ["write"]}
    ]})");
    const auto member = uid(other, {staff});
    BOOST_TEST(!may(p, member, right::read, "events/**"));   // would receive payments
    BOOST_TEST(!may(p, member, right::read, "events/*/eu")); // events/payments/eu
    BOOST_TEST(may(p, member, right::read, "events/orders/**"));
    BOOST_TEST(may(p, member, right::read, "events/orders"));
    BOOST_TEST(may(p, member, right::read, "events/payments")); // the name itself is not below it
    BOOST_TEST(may(p, member, right::read, "logs/*/x"));
    BOOST_TEST(!may(p, member, right::write, "a/secret"));
    BOOST_TEST(may(p, member, right::write, "a/secret/b"));
    BOOST_TEST(may(p, member, right::write, "a/public"));
}

BOOST_AUTO_TEST_CASE(tls_clients_are_only_what_client_rules_say)
{
    identity ci;
    ci.uid = ci.gid = 65534;
    ci.client = "ci";
    identity web = ci;
    web.client = "web";
    identity as_host_uid = ci; // a key's name, whatever uid the host runs as
    as_host_uid.uid = host;
    const auto p = parsed(R"({"rules": [
        {"anyone": true, "allow": ["write", "create"]},
        {"uid": 65534, "allow": ["write"]},
        {"host": "*", "allow": ["write"]},
        {"client": "CI", "allow": ["write", "read"], "names": ["events\\**"]},
        {"client": "*", "allow": ["list"]}]})");
    BOOST_TEST(may(p, ci, right::write, "events\\x")); // client names fold case
    BOOST_TEST(may(p, ci, right::read, "events\\**"));
    BOOST_TEST(!may(p, ci, right::write, "other")); // not "anyone", nor uid 65534, nor a host
    BOOST_TEST(!may(p, web, right::write, "events\\x"));
    BOOST_TEST(may(p, web, right::list));
    BOOST_TEST(!may(p, ci, right::admin));
    // Without rules a client gets nothing, even as the host's own uid; and
    // slotbus\** is never a client's to create.
    const auto none = parsed(R"({"rules": []})");
    BOOST_TEST(!may(none, ci, right::list));
    BOOST_TEST(!may(none, as_host_uid, right::write, "events\\x"));
    BOOST_TEST(!may(parsed(R"({"rules": [{"client": "*", "allow": ["create"]}]})"), ci,
                    right::create, "slotbus\\cli\\x"));
    BOOST_TEST(ci.str() == "client ci");
    BOOST_TEST(refused(R"({"rules": [{"client": "", "allow": ["write"]}]})").find("\"client\"") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(peer_hosts_are_only_what_host_rules_say)
{
    identity beta;
    beta.uid = beta.gid = 65534;
    beta.host = "beta";
    identity gamma = beta;
    gamma.host = "gamma";
    const auto p = parsed(R"({"rules": [
        {"anyone": true, "allow": ["write", "create"]},
        {"host": "BETA", "allow": ["write"], "names": ["events\\**"]},
        {"host": "*", "deny": ["write"], "names": ["events\\secret"]}]})");
    // "anyone" is this machine's users, never the network.
    BOOST_TEST(may(p, uid(other), right::write, "events\\x"));
    BOOST_TEST(may(p, beta, right::write, "events\\x")); // host names fold case
    BOOST_TEST(!may(p, beta, right::write, "other"));
    BOOST_TEST(!may(p, beta, right::create, "events\\x"));
    BOOST_TEST(!may(p, gamma, right::write, "events\\x"));
    // Without any rule, the built-in default gives a peer nothing.
    BOOST_TEST(!may(parsed(R"({"rules": []})"), beta, right::write, "events\\x"));
    BOOST_TEST(!may(parsed(R"({"rules": []})"), beta, right::list));
    BOOST_TEST(
        refused(R"({"rules": [{"host": "no spaces", "allow": ["write"]}]})").find("\"host\"") !=
        std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_domains_broadcasts_are_only_what_domain_rules_say)
{
    identity wg;
    wg.uid = wg.gid = 65534;
    wg.domain = "wg";
    identity other = wg;
    other.domain = "other";
    const auto p = parsed(R"({"rules": [
        {"anyone": true, "allow": ["write"]},
        {"uid": 65534, "allow": ["write"]},
        {"host": "*", "allow": ["write"]},
        {"domain": "*", "deny": ["write"], "names": ["taxes\\secret"]},
        {"domain": "WG", "allow": ["write"], "names": ["taxes\\**"]}]})");
    BOOST_TEST(may(p, wg, right::write, "taxes\\sue")); // domain names fold case
    BOOST_TEST(!may(p, wg, right::write, "taxes\\secret"));
    BOOST_TEST(!may(p, wg, right::write, "other")); // not "anyone", nor uid 65534, nor a host
    BOOST_TEST(!may(p, other, right::write, "taxes\\sue"));
    BOOST_TEST(!may(p, wg, right::create, "taxes\\sue"));
    // Without a rule, the built-in default gives broadcasts nothing.
    BOOST_TEST(!may(parsed(R"({"rules": []})"), wg, right::write, "taxes\\sue"));
    BOOST_TEST(!may(parsed(R"({"rules": [{"domain": "*", "allow": ["create"]}]})"), wg,
                    right::create, "slotbus\\x"));
    BOOST_TEST(wg.str() == "domain wg");
    BOOST_TEST(
        refused(R"({"rules": [{"domain": "a b", "allow": ["write"]}]})").find("\"domain\"") !=
        std::string::npos);
}
