// Plugin manifests: what is accepted, and how each mistake is named.
#define BOOST_TEST_MODULE manifest
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <unistd.h>

#include "plugins/manifest.hpp"

using namespace slotbus::bus;
namespace fs = std::filesystem;

namespace {

struct dir {
    fs::path path = fs::temp_directory_path() / ("slotbus-manifest-" + std::to_string(::getpid()));
    dir() { fs::create_directories(path); }
    ~dir() { fs::remove_all(path); }
};

std::optional<plugin_manifest> parse(const dir& d, const std::string& text, manifest_error& error)
{
    return parse_manifest(d.path / "p.json", text, error);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_full_manifest_and_its_defaults)
{
    dir d;
    manifest_error error;
    auto m = parse(d, R"({"name": "journal", "executable": "/bin/sh", "args": ["-c", "true"],
                         "env": {"A": "1"}, "restart": "always", "max_restarts": 3,
                         "backoff_ms": 10, "backoff_max_ms": 20, "stop_timeout_ms": 30,
                         "description": "x"})",
                   error);
    BOOST_REQUIRE_MESSAGE(m, error.field << ' ' << error.what);
    BOOST_TEST(m->name == "journal");
    BOOST_TEST(m->executable == "/bin/sh");
    BOOST_TEST(m->args.size() == 2u);
    BOOST_TEST(m->env.at("A") == "1");
    BOOST_TEST((m->restart == restart_policy::always));
    BOOST_TEST(m->max_restarts == 3u);
    BOOST_TEST(m->stop_timeout.count() == 30);
    BOOST_TEST(m->cwd == fs::absolute(d.path));

    auto defaults = parse(d, R"({"name": "a", "executable": "sh"})", error); // found on $PATH
    BOOST_REQUIRE(defaults);
    BOOST_TEST((defaults->restart == restart_policy::on_failure));
    BOOST_TEST(defaults->max_restarts == 5u);
    BOOST_TEST(defaults->backoff_initial.count() == 200);
    BOOST_TEST(defaults->executable.filename() == "sh");
}

BOOST_AUTO_TEST_CASE(an_executable_beside_the_manifest_comes_first)
{
    dir d;
    std::ofstream(d.path / "tool") << "#!/bin/sh\n";
    fs::permissions(d.path / "tool", fs::perms::owner_all);
    manifest_error error;
    auto m = parse(d, R"({"name": "a", "executable": "tool"})", error);
    BOOST_REQUIRE(m);
    BOOST_TEST(m->executable == fs::absolute(d.path / "tool"));
    auto relative = parse(d, R"({"name": "a", "executable": "./tool", "cwd": "."})", error);
    BOOST_REQUIRE(relative);
    BOOST_TEST(relative->executable == fs::absolute(d.path / "tool"));
}

BOOST_AUTO_TEST_CASE(every_mistake_names_its_field)
{
    dir d;
    struct bad {
        const char* json;
        const char* field;
        const char* what;
    } cases[] = {
        {R"({"executable": "/bin/sh"})", "name", "is required"},
        {R"({"name": "a"})", "executable", "is required"},
        {R"({"name": "Has Space", "executable": "/bin/sh"})", "name", "must be 1-64"},
        {R"({"name": 7, "executable": "/bin/sh"})", "name", "must be a string"},
        {R"({"name": "a", "executable": "/no/such/file"})", "executable", "is not an executable"},
        {R"({"name": "a", "executable": "/bin/sh", "args": "-c"})", "args", "array of strings"},
        {R"({"name": "a", "executable": "/bin/sh", "args": [1]})", "args", "array of strings"},
        {R"({"name": "a", "executable": "/bin/sh", "env": {"A": 1}})", "env", "strings"},
        {R"({"name": "a", "executable": "/bin/sh", "restart": "often"})", "restart", "\"never\""},
        {R"({"name": "a", "executable": "/bin/sh", "max_restarts": -1})", "max_restarts",
         "between"},
        {R"({"name": "a", "executable": "/bin/sh", "backoff_ms": 1.5})", "backoff_ms",
         "whole number"},
        {R"({"name": "a", "executable": "/bin/sh", "backoff_ms": 100, "backoff_max_ms": 10})",
         "backoff_max_ms", "less than backoff_ms"},
        {R"({"name": "a", "executable": "/bin/sh", "cwd": "nowhere"})", "cwd", "not a directory"},
        {R"({"name": "a", "executable": "/bin/sh", "restrat": "never"})", "restrat",
         "unknown field"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.json)
        {
            manifest_error error;
            BOOST_TEST(!parse(d, c.json, error));
            BOOST_TEST(error.field == c.field);
            BOOST_TEST(error.what.find(c.what) != std::string::npos, error.what);
        }
    }
    manifest_error error;
    BOOST_TEST(!parse(d, "[1, 2]", error));
    BOOST_TEST(error.what == "must be a JSON object");
    BOOST_TEST(!parse(d, "{", error));
    BOOST_TEST(error.what.find("not valid JSON") == 0u);
    // Where it went wrong, as an editor counts: line and column from 1.
    BOOST_TEST(!parse(d, "{\n  \"name\": \"a\",\n  oops: 1\n}", error));
    BOOST_TEST(error.line == 3u);
    BOOST_TEST(error.column == 3u);
    BOOST_TEST(!parse(d, R"({"name": "a",})", error));
    BOOST_TEST(error.line == 1u);
    BOOST_TEST(error.column == 14u);
}

BOOST_AUTO_TEST_CASE(a_directory_loads_the_valid_ones_and_lists_the_rest)
{
    dir d;
    std::ofstream(d.path / "b.json") << R"({"name": "b", "executable": "/bin/sh"})";
    std::ofstream(d.path / "a.json") << R"({"name": "a", "executable": "/bin/sh"})";
    std::ofstream(d.path / "c.json") << R"({"name": "a", "executable": "/bin/sh"})";
    std::ofstream(d.path / "d.json") << "nonsense";
    std::ofstream(d.path / "notes.txt") << "ignored";
    std::vector<manifest_error> errors;
    const auto loaded = load_manifests(d.path, errors);
    // Both manifests of "a" load: which one runs is the supervisor's to say.
    BOOST_REQUIRE_EQUAL(loaded.size(), 3u);
    BOOST_TEST(loaded[0].name == "a"); // in file name order
    BOOST_TEST(loaded[1].name == "b");
    BOOST_TEST(loaded[2].file.filename() == "c.json");
    BOOST_REQUIRE_EQUAL(errors.size(), 1u);
    BOOST_TEST(errors[0].file.filename() == "d.json");
    BOOST_TEST(loaded[0].fingerprint != loaded[1].fingerprint);

    load_manifests(d.path / "missing", errors);
    BOOST_TEST(errors.back().what.find("cannot read the plugins directory") == 0u);
}

BOOST_AUTO_TEST_CASE(permissions_are_least_privilege_and_checked_like_policy_rules)
{
    dir d;
    manifest_error error;
    auto none = parse(d, R"({"name": "a", "executable": "/bin/sh"})", error);
    BOOST_REQUIRE(none);
    BOOST_REQUIRE(none->permissions);
    BOOST_TEST(none->permissions->empty()); // its own subtree only
    auto some = parse(d, R"({"name": "a", "executable": "/bin/sh", "permissions": [
        {"allow": ["write"], "names": ["events/**"]}, {"allow": ["list"]}]})",
                      error);
    BOOST_REQUIRE_MESSAGE(some, error.field << ' ' << error.what);
    BOOST_REQUIRE(some->permissions->size() == 2u);
    BOOST_TEST(
        (*some->permissions)[0].covers(right::write, slotbus::topic_pattern::parse("events/x")));
    BOOST_TEST(
        !(*some->permissions)[0].covers(right::read, slotbus::topic_pattern::parse("events/x")));
    BOOST_TEST((*some->permissions)[1].covers(right::list, {}));
    for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
             {R"([{"allow": ["write"], "nmes": ["a"]}])",
              "entry 1: unknown field \"nmes\" (a typo?)"},
             {R"([{"allow": ["fly"]}])", "entry 1: \"allow\" names \"fly\", not a right"},
             {R"({"allow": ["read"]})", "must be a list of"}}) {
        BOOST_TEST(!parse(
            d, R"({"name": "a", "executable": "/bin/sh", "permissions": )" + text + "}", error));
        BOOST_TEST(error.field == "permissions");
        BOOST_TEST(error.what.find(why) == 0u, error.what);
    }
}
