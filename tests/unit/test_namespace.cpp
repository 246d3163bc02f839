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
