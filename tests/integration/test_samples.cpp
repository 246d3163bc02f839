#define BOOST_TEST_MODULE samples
// Every sample pair, run end to end against a real host, output checked.
#include "host_fixture.hpp"

#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(seeds_writer_and_reader)
{
    slotbus::test::host host;
    const std::vector<std::string> env{host.env()};
    slotbus::test::child reader(SEEDS_READER_PATH, {"--count", "3"}, env);
    BOOST_REQUIRE(reader.wait_for_line("Mailslot created successfully."));
    slotbus::test::child writer(SEEDS_WRITER_PATH, {"--pause-ms", "300"}, env);
    BOOST_TEST(writer.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(reader.wait_exit(10s).value_or(-999) == 0);

    BOOST_TEST(writer.stdout_text() == "Slot written to successfully.\nSlot written to "
                                       "successfully.\nSlot written to successfully.\n");
    // The reader prints what the seed's ReadSlot prints, for each record in order.
    const auto out = reader.stdout_text();
    const auto one =
        out.find("Contents of the mailslot: Message one for mailslot.\nMessage #1 of ");
    const auto two = out.find("Contents of the mailslot: Message two for mailslot.\nMessage #");
    const auto three = out.find("Contents of the mailslot: Message three for mailslot.\nMessage #");
    BOOST_TEST(one != std::string::npos, out);
    BOOST_TEST(two != std::string::npos, out);
    BOOST_TEST(three != std::string::npos, out);
    BOOST_TEST((one < two && two < three));
    BOOST_TEST(out.find("Waiting for a message...") != std::string::npos);
    // The third record came after the pause, on its own.
    BOOST_TEST(out.find("Message three for mailslot.\nMessage #1 of 1") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(seeds_writer_without_a_reader_says_so)
{
    slotbus::test::host host;
    slotbus::test::child writer(SEEDS_WRITER_PATH, {"--pause-ms", "0"}, {host.env()});
    BOOST_TEST(writer.wait_exit(10s).value_or(-999) == 1);
    BOOST_TEST(writer.stdout_text() == "CreateFile failed with 2.\n");
}

BOOST_AUTO_TEST_CASE(quickstart_prints_its_records)
{
    slotbus::test::host host;
    slotbus::test::child quickstart(QUICKSTART_PATH, {}, {host.env()});
    BOOST_TEST(quickstart.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(quickstart.stdout_text() ==
               "2 records queued\nMessage one for mailslot.\nMessage two for mailslot.\n");
}

BOOST_AUTO_TEST_CASE(orders_publisher_and_subscriber)
{
    for (const bool callbacks : {false, true}) {
        slotbus::test::host host;
        slotbus::test::child subscriber(
            ORDERS_SUBSCRIBER_PATH,
            callbacks ? std::vector<std::string>{"--count", "3", "--callbacks"}
                      : std::vector<std::string>{"--count", "3"},
            {host.env()});
        BOOST_REQUIRE(subscriber.wait_for_line("subscribed to events/orders/**"));
        slotbus::test::child publisher(ORDERS_PUBLISHER_PATH, {"--count", "3"}, {host.env()});
        BOOST_TEST(publisher.wait_exit(10s).value_or(-999) == 0);
        BOOST_TEST(subscriber.wait_exit(10s).value_or(-999) == 0);
        BOOST_TEST(publisher.stdout_text() == "published A-1 to 1 subscriber\n"
                                              "published A-2 to 1 subscriber\n"
                                              "published A-3 to 1 subscriber\n");
        const auto out = subscriber.stdout_text();
        BOOST_TEST(out.find("order A-2: 19.00 EUR, 2 items, express (from /clients/shop)\n") !=
                       std::string::npos,
                   out);
        BOOST_TEST(
            out.find("received 3, handled 3, malformed 0, duplicates 0") != std::string::npos, out);
    }
}

BOOST_AUTO_TEST_CASE(health_requester_and_responder)
{
    slotbus::test::host host;
    {
        slotbus::test::child lonely(HEALTH_REQUESTER_PATH, {"--count", "1"}, {host.env()});
        BOOST_TEST(lonely.wait_exit(10s).value_or(-999) == 1);
        BOOST_TEST(lonely.stdout_text().find("request failed with 2") != std::string::npos);
    }
    slotbus::test::child responder(HEALTH_RESPONDER_PATH, {"--count", "3"}, {host.env()});
    BOOST_REQUIRE(responder.wait_for_line("answering on services/health"));
    slotbus::test::child requester(HEALTH_REQUESTER_PATH, {"--count", "3"}, {host.env()});
    BOOST_TEST(requester.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(responder.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(requester.wait_for_lines("pong ", 3, 0s));
    BOOST_TEST(requester.stdout_text().find("pong 3: ok (") != std::string::npos,
               requester.stdout_text());
    BOOST_TEST(responder.stdout_text().find("ping 2 from dashboard") != std::string::npos);
}
