#define BOOST_TEST_MODULE names
#include "slotbus/error.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/topic_pattern.hpp"

#include <boost/test/unit_test.hpp>

using slotbus::name_scope;
using slotbus::slot_name;

namespace {
std::error_code parse_error(std::string_view text)
{
    std::error_code ec;
    slot_name::parse(text, ec);
    return ec;
}
} // namespace

BOOST_AUTO_TEST_CASE(local_server_form)
{
    auto n = slot_name::parse(R"(\\.\mailslot\taxes\sue)");
    BOOST_TEST((n.scope() == name_scope::local));
    BOOST_TEST(n.server() == ".");
    BOOST_TEST(n.path() == R"(taxes\sue)");
    BOOST_TEST(n.key() == R"(taxes\sue)");
    BOOST_TEST(n.str() == R"(\\.\mailslot\taxes\sue)");
}

BOOST_AUTO_TEST_CASE(every_client_form)
{
    auto host = slot_name::parse(R"(\\BOOKKEEPER\mailslot\taxes\sue)");
    BOOST_TEST((host.scope() == name_scope::remote));
    BOOST_TEST(host.server() == "BOOKKEEPER");
    auto domain = slot_name::parse(R"(\\accounting.example\mailslot\x)");
    BOOST_TEST((domain.scope() == name_scope::remote));
    auto star = slot_name::parse(R"(\\*\mailslot\taxes\sue)");
    BOOST_TEST((star.scope() == name_scope::broadcast));
    BOOST_TEST(star.str() == R"(\\*\mailslot\taxes\sue)");
}

BOOST_AUTO_TEST_CASE(slashes_and_short_form_are_the_same_name)
{
    auto canonical = slot_name::parse(R"(\\.\mailslot\taxes\sue)");
    BOOST_TEST((slot_name::parse("//./mailslot/taxes/sue") == canonical));
    BOOST_TEST((slot_name::parse(R"(\\./mailslot\taxes/sue)") == canonical));
    BOOST_TEST((slot_name::parse("taxes/sue") == canonical));
    BOOST_TEST((slot_name::parse(R"(taxes\sue)") == canonical));
    BOOST_TEST(slot_name::parse("taxes/sue").str() == canonical.str());
}

BOOST_AUTO_TEST_CASE(case_folds_but_spelling_is_kept)
{
    auto upper = slot_name::parse(R"(\\.\MAILSLOT\BLORT)");
    auto lower = slot_name::parse(R"(\\.\mailslot\blort)");
    BOOST_TEST((upper == lower));
    BOOST_TEST(upper.path() == "BLORT");
    BOOST_TEST(upper.key() == "blort");
    BOOST_TEST(
        (slot_name::parse(R"(\\HOST\mailslot\a)") == slot_name::parse(R"(\\host\mailslot\A)")));
    BOOST_TEST(!(slot_name::parse("a/b") == slot_name::parse("a/c")));
}

BOOST_AUTO_TEST_CASE(invalid_names)
{
    for (std::string_view bad : {
             "",                         // nothing
             R"(\\.\mailslot)",          // no path
             R"(\\.\mailslot\)",         // empty component
             R"(\\.\mailslot\a\\b)",     // empty component inside
             R"(\\.\mailslot\a\)",       // trailing separator
             R"(\\.\pipe\a)",            // not a mailslot
             R"(\\.\mailslots\a)",       // not quite
             R"(\\\mailslot\a)",         // empty server
             R"(\\bad host\mailslot\a)", // server with a space
             R"(\\.)",                   // server only
             R"(\a)",                    // one leading separator
             "a/*",                      // wildcards belong to patterns
             "a?b",
             "a/./b", // no dot components
             "a/../b",
             "tab\there", // control characters
             "/",
         })
        BOOST_TEST(parse_error(bad) == slotbus::error::invalid_name, "for '" << bad << "'");
}

BOOST_AUTO_TEST_CASE(length_limit)
{
    const std::string at_limit(slotbus::max_path_length, 'x');
    BOOST_TEST(!parse_error("\\\\.\\mailslot\\" + at_limit));
    BOOST_TEST(("\\\\.\\mailslot\\" + at_limit).size() == 259u); // MAX_PATH less the terminator
    BOOST_TEST(parse_error(at_limit + "x") == slotbus::error::filename_exced_range);
    // Components count with their separators.
    std::string deep;
    while (deep.size() <= slotbus::max_path_length)
        deep += "ab/";
    deep += "c";
    BOOST_TEST(parse_error(deep) == slotbus::error::filename_exced_range);
}

BOOST_AUTO_TEST_CASE(throwing_form_carries_the_code)
{
    try {
        (void)slot_name::parse("a//b");
        BOOST_FAIL("no exception");
    } catch (const slotbus::system_error& e) {
        BOOST_TEST(e.code() == slotbus::error::invalid_name);
    }
}

BOOST_AUTO_TEST_CASE(names_and_patterns_are_valid_utf8_or_refused)
{
    auto refused = [](std::string_view text) {
        std::error_code ec;
        (void)slot_name::parse(text, ec);
        return ec == slotbus::error::invalid_name;
    };
    BOOST_TEST(!refused("caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x93\xae")); // é, €, 📮
    for (const char* bad : {"a/\xff", "a/\xc3",               // a stray byte, a cut sequence
                            "a/\xc0\xaf", "a/\xe0\x80\xaf",   // overlong forms of '/'
                            "a/\xed\xa0\x80",                 // a surrogate
                            "a/\xf4\x90\x80\x80", "a/\x80x"}) // past U+10FFFF; a lone continuation
        BOOST_TEST(refused(bad),
                   "accepted: " << std::string_view(bad).substr(2).size() << " bytes");
    std::error_code ec;
    (void)slotbus::topic_pattern::parse("events/\xff/**", ec);
    BOOST_TEST((ec == slotbus::error::invalid_name));
    BOOST_TEST(slotbus::to_valid_utf8("ok\xff\xc3") == "ok\xef\xbf\xbd\xef\xbf\xbd");
    BOOST_TEST(slotbus::to_valid_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
}
