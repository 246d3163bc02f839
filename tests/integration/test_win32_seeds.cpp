// The seed documents' programs, compiled unchanged against slotbus::win32
// (tests/win32), run against a real host: "Creating a Mailslot", "Writing
// to a Mailslot" (as C and as C++), and the network article's server and
// client, made of its fragments that survived whole.
#define BOOST_TEST_MODULE win32_seeds
#include "child.hpp"
#include "host_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {
const std::string three_writes = "Slot written to successfully.\n"
                                 "Slot written to successfully.\n"
                                 "Slot written to successfully.\n";
} // namespace

BOOST_AUTO_TEST_CASE(the_creator_makes_its_slot)
{
    slotbus::test::host host;
    // Its `void main` leaves the exit status to chance under GCC (MSVC's is
    // 0): what it printed is what counts.
    slotbus::test::child creator(WIN32_SEED_CREATOR_PATH, {}, {host.env()});
    BOOST_TEST(creator.wait_exit(10s).has_value());
    BOOST_TEST(creator.stdout_text() == "Mailslot created successfully.\n");
    // The name is taken while a server holds it, as Windows says.
    slotbus::test::child server(WIN32_SEED_NETWORK_SERVER_PATH, {"1"}, {host.env()});
    BOOST_REQUIRE(server.wait_for_line("Mailslot created successfully."));
    slotbus::test::child second(WIN32_SEED_CREATOR_PATH, {}, {host.env()});
    BOOST_TEST(second.wait_exit(10s).has_value());
    BOOST_TEST(second.stdout_text() == "CreateMailslot failed with 183\n");
}

BOOST_AUTO_TEST_CASE(the_writers_and_the_network_client_reach_the_server)
{
    slotbus::test::host host;
    const std::vector<std::string> env{host.env()};
    slotbus::test::child server(WIN32_SEED_NETWORK_SERVER_PATH, {"7"}, env);
    BOOST_REQUIRE(server.wait_for_line("Mailslot created successfully."));

    // Each writer: two records, its Sleep(5000), the third. Its `return
    // TRUE` makes a successful run exit with 1, on Windows as here.
    slotbus::test::child writer(WIN32_SEED_WRITER_PATH, {}, env);
    BOOST_TEST(writer.wait_exit(20s).value_or(-999) == 1);
    BOOST_TEST(writer.stdout_text() == three_writes);
    slotbus::test::child writer_cpp(WIN32_SEED_WRITER_CPP_PATH, {}, env);
    BOOST_TEST(writer_cpp.wait_exit(20s).value_or(-999) == 1);
    BOOST_TEST(writer_cpp.stdout_text() == three_writes);
    // The article's client writes sizeof(MyMessage): a pointer's 8 bytes.
    slotbus::test::child client(WIN32_SEED_NETWORK_CLIENT_PATH, {}, env);
    BOOST_TEST(client.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(client.stdout_text() == "Wrote 8 bytes.\n");

    BOOST_TEST(server.wait_exit(10s).value_or(-999) == 0);
    std::string expected = "Mailslot created successfully.\n";
    for (int writers = 0; writers < 2; ++writers)
        expected += "Next record is 26 bytes.\nRecord: Message one for mailslot.\n"
                    "Next record is 26 bytes.\nRecord: Message two for mailslot.\n"
                    "Next record is 28 bytes.\nRecord: Message three for mailslot.\n";
    expected += "Next record is 8 bytes.\nRecord: This is \n";
    BOOST_TEST(server.stdout_text() == expected);
}

BOOST_AUTO_TEST_CASE(the_writer_without_a_server_says_so)
{
    slotbus::test::host host;
    slotbus::test::child writer(WIN32_SEED_WRITER_PATH, {}, {host.env()});
    BOOST_TEST(writer.wait_exit(10s).value_or(-999) == 0); // its `return FALSE`
    BOOST_TEST(writer.stdout_text() == "CreateFile failed with 2.\n");
    slotbus::test::child client(WIN32_SEED_NETWORK_CLIENT_PATH, {}, {host.env()});
    BOOST_TEST(client.wait_exit(10s).value_or(-999) == 1);
    BOOST_TEST(client.stdout_text() == "CreateFile failed: 2\n");
}
