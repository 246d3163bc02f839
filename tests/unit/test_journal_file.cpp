// The journal plugin's files: whole lines, rotation by size, repair of a cut line.
#define BOOST_TEST_MODULE journal_file
#include "journal_file.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace slotbus::journal;
namespace fs = std::filesystem;

namespace {

struct fixture {
    fs::path dir = fs::temp_directory_path() / ("slotbus-journal-" + std::to_string(::getpid()));
    ~fixture() { fs::remove_all(dir); }

    [[nodiscard]] journal_options options(std::uint64_t max_bytes, unsigned max_files) const
    {
        journal_options o;
        o.dir = dir;
        o.max_bytes = max_bytes;
        o.max_files = max_files;
        return o;
    }
};

std::string text_of(const fs::path& file)
{
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

BOOST_FIXTURE_TEST_CASE(rotates_before_a_file_would_pass_its_size, fixture)
{
    journal_file j(options(10, 2));
    BOOST_TEST(j.open() == 0u);
    j.append("aaaa\n");
    j.append("bbbb\n"); // exactly 10: stays
    j.append("cccc\n"); // would pass 10: rotate first
    BOOST_TEST(text_of(j.rotated(1)) == "aaaa\nbbbb\n");
    BOOST_TEST(text_of(j.current()) == "cccc\n");
    j.append("dddd\ndddd\n"); // the first fills this file, the second starts the next
    j.append("eeee\n");
    j.append("ffff\n");
    // Two rotated files kept, the newest as .1; the oldest lines are gone.
    BOOST_TEST(text_of(j.rotated(1)) == "dddd\neeee\n");
    BOOST_TEST(text_of(j.rotated(2)) == "cccc\ndddd\n");
    BOOST_TEST(text_of(j.current()) == "ffff\n");
    j.append("gggggggggg\n"); // one line longer than the limit still goes, alone
    BOOST_TEST(text_of(j.current()) == "gggggggggg\n");
    BOOST_TEST(!fs::exists(j.rotated(3)));
}

BOOST_FIXTURE_TEST_CASE(a_batch_larger_than_a_file_is_split_at_lines, fixture)
{
    journal_file j(options(10, 5));
    j.open();
    j.append("aaaa\nbbbb\ncccc\ndddd\neeee\n"); // 25 bytes in one append
    BOOST_TEST(text_of(j.rotated(2)) == "aaaa\nbbbb\n");
    BOOST_TEST(text_of(j.rotated(1)) == "cccc\ndddd\n");
    BOOST_TEST(text_of(j.current()) == "eeee\n");
}

BOOST_FIXTURE_TEST_CASE(opening_drops_a_line_a_crash_cut_short_and_nothing_else, fixture)
{
    {
        journal_file j(options(1u << 20, 2));
        j.open();
        j.append("{\"a\":1}\n{\"b\":2}\n");
    }
    std::ofstream(dir / "journal.jsonl", std::ios::app) << "{\"c\":";
    journal_file again(options(1u << 20, 2));
    BOOST_TEST(again.open() == 5u);
    BOOST_TEST(again.size() == 16u);
    again.append("{\"d\":4}\n");
    BOOST_TEST(text_of(again.current()) == "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");

    // A file that is nothing but a cut line, longer than one read: emptied.
    fs::remove(dir / "journal.jsonl");
    std::ofstream(dir / "journal.jsonl") << std::string(10000, 'x');
    journal_file cut(options(1u << 20, 2));
    BOOST_TEST(cut.open() == 10000u);
    BOOST_TEST(fs::file_size(dir / "journal.jsonl") == 0u);
}
