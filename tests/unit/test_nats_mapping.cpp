#define BOOST_TEST_MODULE nats_mapping
// The NATS bridge's mapping of slot names onto subjects and its config's
// checks: what cannot map is refused when the config is read, with where.
#include "config.hpp"
#include "subjects.hpp"

#include <boost/test/unit_test.hpp>

using namespace slotbus;
using namespace slotbus::bridge;

namespace {

std::string subject(std::string_view path)
{
    std::string why;
    auto s = subject_of_name(path, why);
    return s ? *s : "refused: " + why;
}

std::string name(std::string_view subject)
{
    std::string why;
    auto n = name_of_subject(subject, why);
    return n ? *n : "refused: " + why;
}

std::string pattern(std::string_view text)
{
    std::string why;
    auto s = subject_of_pattern(topic_pattern::parse(text), why);
    return s ? *s : "refused: " + why;
}

std::string config_error(std::string_view json)
{
    std::string why;
    const auto c = parse_config(json, why);
    return c ? std::string("accepted") : why;
}

} // namespace

BOOST_AUTO_TEST_CASE(names_map_one_to_one_onto_subjects)
{
    BOOST_TEST(subject(R"(events\orders\eu)") == "events.orders.eu");
    BOOST_TEST(subject("Events/Orders/EU") == "events.orders.eu"); // subjects are the folded form
    BOOST_TEST(name("events.orders.eu") == R"(events\orders\eu)");
    BOOST_TEST(pattern("events/*/eu") == "events.*.eu");
    BOOST_TEST(pattern("events/**") == "events.>");
    BOOST_TEST(pattern("**") == ">");
}

BOOST_AUTO_TEST_CASE(what_nats_forbids_in_a_token_is_refused)
{
    BOOST_TEST(subject("events/v1.2").starts_with("refused: events/v1.2: has a '.'"));
    BOOST_TEST(subject("events/a b").starts_with("refused"));
    BOOST_TEST(subject("events/a>b").starts_with("refused"));
    BOOST_TEST(pattern("events/v1.2/*").starts_with("refused"));
    // A subject that would name another host, or no slot at all.
    BOOST_TEST(name(R"(\\other\mailslot\x)").starts_with("refused"));
    BOOST_TEST(name(R"(a.b\c)").starts_with("refused"));
    BOOST_TEST(name("a..b").starts_with("refused"));
    BOOST_TEST(name("a.?").starts_with("refused"));
}

BOOST_AUTO_TEST_CASE(a_config_is_checked_whole_and_says_where)
{
    BOOST_TEST(config_error(R"({"exports": [{"from": "events/**"}]})") == "accepted");
    BOOST_TEST(config_error(R"({"exports": [{"from": "events/**"}], "imports": [
        {"subject": "events.>", "mode": "jetstream", "stream": "EVENTS", "durable": "beta"}]})") ==
               "accepted");
    BOOST_TEST(config_error(R"({"exports": [{"from": "events/v1.2/**"}]})") ==
               "exports[0]: from: events\\v1.2\\**: has a '.' (NATS separates levels with it), "
               "no NATS subject");
    BOOST_TEST(config_error(R"({"imports": [{"subject": "events.>.x"}]})") ==
               "imports[0]: subject: events.>.x: '>' must be its last level");
    BOOST_TEST(config_error(R"({"imports": [{"subject": "a", "mode": "jetstream"}]})") ==
               "imports[0]: a jetstream import names its stream");
    BOOST_TEST(config_error(R"({"imports": [{"subject": "a", "mode": "exactly-once"}]})") ==
               "imports[0]: mode must be \"core\" or \"jetstream\", not \"exactly-once\"");
    BOOST_TEST(config_error(R"({"exports": [{"form": "x"}]})").starts_with("exports[0]: "));
    BOOST_TEST(config_error(R"({"exprots": []})") == "the config: unknown member \"exprots\"");
    BOOST_TEST(config_error(R"({"exports": [{"from": "x"}], "servers": ["http://x"]})") ==
               "servers: http://x: a server is nats://HOST:PORT or tls://HOST:PORT");
    BOOST_TEST(
        config_error(R"({"exports": [{"from": "x"}], "auth": {"user": "u", "token": "t"}})") ==
        "auth: give one of user and password, token, creds or nkey_seed");
    BOOST_TEST(config_error("{}") == "the config has no exports and no imports: nothing to bridge");
    BOOST_TEST(config_error("[").starts_with("not JSON"));
}

BOOST_AUTO_TEST_CASE(the_readme_s_example_config_is_valid)
{
    std::string why;
    const auto c = load_config(SLOTBUS_SOURCE_DIR "/plugins/nats-bridge/example.json", why);
    BOOST_REQUIRE_MESSAGE(c, why);
    BOOST_TEST(c->servers.size() == 2u);
    BOOST_TEST(c->tls);
    BOOST_TEST(c->exports.at(0).subject == "events.orders.>");
    BOOST_TEST((c->exports.at(0).mode == route_mode::jetstream));
    BOOST_TEST((c->imports.at(1).mode == route_mode::core));
}
