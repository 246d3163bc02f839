#define BOOST_TEST_MODULE namespace_tree
#include <boost/test/unit_test.hpp>

#include "core/namespace_tree.hpp"

using namespace slotbus::bus;

namespace {
std::unique_ptr<slot> make(std::string_view name)
{
    return std::make_unique<slot>(slotbus::slot_name::parse(name), slot_config{});
}
} // namespace

BOOST_AUTO_TEST_CASE(find_insert_erase_by_key)
{
    namespace_tree tree;
    tree.insert(make("taxes/Sue"));
    tree.insert(make("taxes/bob/2024"));
    BOOST_TEST(tree.size() == 2u);
    BOOST_TEST(tree.find(R"(taxes\sue)") != nullptr);
    BOOST_TEST(tree.find(R"(taxes\sue)")->name().path() == R"(taxes\Sue)");
    BOOST_TEST(tree.find("taxes") == nullptr); // a directory is no slot
    BOOST_TEST(tree.find(R"(taxes\bob)") == nullptr);
    BOOST_TEST(tree.find(R"(taxes\bob\2024)") != nullptr);
    const auto before = tree.epoch();
    tree.erase(R"(taxes\sue)");
    BOOST_TEST(tree.epoch() != before);
    BOOST_TEST(tree.find(R"(taxes\sue)") == nullptr);
    BOOST_TEST(tree.find(R"(taxes\bob\2024)") != nullptr);
    tree.erase(R"(taxes\bob\2024)");
    BOOST_TEST(tree.size() == 0u);
    tree.insert(make("taxes/sue")); // the name is free again
    BOOST_TEST(tree.find(R"(taxes\sue)") != nullptr);
}

BOOST_AUTO_TEST_CASE(a_slot_can_also_be_a_directory)
{
    namespace_tree tree;
    tree.insert(make("a"));
    tree.insert(make("a/b"));
    tree.erase("a");
    BOOST_TEST(tree.find(R"(a\b)") != nullptr);
    std::vector<std::string> seen;
    tree.insert(make("0"));
    tree.for_each([&](slot& s) { seen.push_back(s.name().key()); });
    BOOST_TEST(seen == (std::vector<std::string>{"0", R"(a\b)"}));
}

// A listing's pages: a walk after any key gives exactly what a full walk
// gives after it, for every prefix, however the tree is shaped.
BOOST_AUTO_TEST_CASE(a_walk_starts_after_any_key_and_stops_when_asked)
{
    namespace_tree tree;
    for (const char* name : {"a", "a/b", "a/b/c", "a/bc", "a/b0", "ab", "b/x/y", "b/x/z", "c"})
        tree.insert(make(name));
    std::vector<std::string> all;
    tree.for_each([&](slot& s) { all.push_back(s.name().key()); });
    BOOST_TEST(all == (std::vector<std::string>{"a", R"(a\b)", R"(a\b\c)", R"(a\b0)", R"(a\bc)",
                                                "ab", R"(b\x\y)", R"(b\x\z)", "c"}));
    for (const std::string prefix : {"", "a", R"(a\b)", "b", R"(b\x)", "c", "nothing"}) {
        std::vector<std::string> below;
        for (const auto& key : all)
            if (prefix.empty() || (key.starts_with(prefix) &&
                                   (key.size() == prefix.size() || key[prefix.size()] == '\\')))
                below.push_back(key);
        std::vector<std::string> walked;
        tree.walk(prefix, "", [&](slot& s) {
            walked.push_back(s.name().key());
            return true;
        });
        BOOST_TEST(walked == below, "prefix " << prefix);
        for (std::size_t i = 0; i < below.size(); ++i) {
            std::vector<std::string> rest;
            tree.walk(prefix, below[i], [&](slot& s) {
                rest.push_back(s.name().key());
                return true;
            });
            BOOST_TEST(rest == std::vector<std::string>(below.begin() + static_cast<long>(i) + 1,
                                                        below.end()),
                       "prefix " << prefix << " after " << below[i]);
        }
    }
    // After a key that is no slot (a directory, or gone): what follows it.
    std::vector<std::string> rest;
    tree.walk("", R"(b\x)", [&](slot& s) {
        rest.push_back(s.name().key());
        return true;
    });
    BOOST_TEST(rest == (std::vector<std::string>{R"(b\x\y)", R"(b\x\z)", "c"}));
    std::size_t calls = 0;
    tree.walk("", "", [&](slot&) { return ++calls < 3; });
    BOOST_TEST(calls == 3u); // stopped when asked
}
