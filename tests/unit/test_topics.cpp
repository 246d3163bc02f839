#define BOOST_TEST_MODULE topics
#include "slotbus/error.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/topic_pattern.hpp"

#include <boost/test/unit_test.hpp>

#include <set>

#include "core/subscription_tree.hpp"

using slotbus::topic_pattern;

namespace {
bool matches(std::string_view pattern, std::string_view name)
{
    return topic_pattern::parse(pattern).matches(slotbus::slot_name::parse(name).key());
}
std::error_code parse_error(std::string_view text)
{
    std::error_code ec;
    (void)topic_pattern::parse(text, ec);
    return ec;
}
} // namespace

BOOST_AUTO_TEST_CASE(pattern_matching_table)
{
    struct row {
        std::string_view pattern, name;
        bool match;
    };
    const row table[] = {
        {"events/orders", "events/orders", true},
        {"events/orders", "EVENTS/Orders", true},       // case
        {R"(\\.\mailslot\Events\*)", "events/x", true}, // full form
        {"events/orders", "events/orders/eu", false},
        {"events/orders", "events", false},
        {"events/*", "events/orders", true},
        {"events/*", "events", false}, // exactly one level
        {"events/*", "events/orders/eu", false},
        {"events/**", "events/orders", true},
        {"events/**", "events/orders/eu/de", true},
        {"events/**", "events", false},         // the subtree below, not the node
        {"events/**", "eventsx/orders", false}, // no partial components
        {"events/*/eu", "events/orders/eu", true},
        {"events/*/eu", "events/orders/us", false},
        {"*/orders", "events/orders", true},
        {"*", "events", true},
        {"*", "events/orders", false},
        {"**", "anything/at/all", true},
        {"a/*/c/**", "a/b/c/d/e", true},
        {"a/*/c/**", "a/b/c", false},
    };
    for (const auto& r : table)
        BOOST_TEST(matches(r.pattern, r.name) == r.match, r.pattern << " ~ " << r.name);
}

BOOST_AUTO_TEST_CASE(invalid_patterns)
{
    for (std::string_view bad : {"", "a//b", "a/b*", "a/*b", "a/**/b", "a/***", "a?",
                                 R"(\\host\mailslot\a)", R"(\\*\mailslot\a)", "a/./b"})
        BOOST_TEST(parse_error(bad) == slotbus::error::invalid_name, "for '" << bad << "'");
    BOOST_TEST(parse_error(std::string(slotbus::max_path_length + 1, 'x')) ==
               slotbus::error::filename_exced_range);
    BOOST_TEST(topic_pattern::parse("Events/*/EU").str() == R"(Events\*\EU)");
    BOOST_TEST(topic_pattern::parse("Events/*/EU").key() == R"(events\*\eu)");
}

BOOST_AUTO_TEST_CASE(tree_finds_exactly_the_matching_subscriptions)
{
    using namespace slotbus::bus;
    subscription_tree tree;
    // Stand-in slot pointers: the tree never dereferences them.
    auto* a = reinterpret_cast<slot*>(0x10);
    auto* b = reinterpret_cast<slot*>(0x20);
    auto* c = reinterpret_cast<slot*>(0x30);
    auto* d = reinterpret_cast<slot*>(0x40);
    tree.add(topic_pattern::parse("events/orders"), a);
    tree.add(topic_pattern::parse("events/*"), b);
    tree.add(topic_pattern::parse("events/**"), c);
    tree.add(topic_pattern::parse("*/orders/*"), d);
    for (int i = 0; i < 1000; ++i) // unrelated names do not show up
        tree.add(topic_pattern::parse("noise/" + std::to_string(i) + "/**"), d);
    auto found = [&](std::string_view name) {
        std::multiset<slot*> out;
        tree.match(slotbus::slot_name::parse(name).key(), [&](slot* s) { out.insert(s); });
        return out;
    };
    BOOST_TEST((found("events/orders") == std::multiset<slot*>{a, b, c}));
    BOOST_TEST((found("events/orders/eu") == std::multiset<slot*>{c, d}));
    BOOST_TEST((found("audit/orders/eu") == std::multiset<slot*>{d}));
    BOOST_TEST(found("elsewhere").empty());
    BOOST_TEST(tree.any_match(R"(noise\5\x)"));
    BOOST_TEST(!tree.any_match(R"(noise\5)"));

    BOOST_TEST(tree.remove(topic_pattern::parse("events/*"), b));
    BOOST_TEST(!tree.remove(topic_pattern::parse("events/*"), b)); // once
    BOOST_TEST(!tree.remove(topic_pattern::parse("never/added"), a));
    BOOST_TEST((found("events/orders") == std::multiset<slot*>{a, c}));
    BOOST_TEST(tree.size() == 1003u);
}
