// The seeds' "Reading from a Mailslot", on slotbus: create the slot, then
// loop: info() for the next record's size and the count, read each, print it
// with how many there were. Where the seed sleeps between polls, this waits
// on a blocking read: the slot's timeout is MAILSLOT_WAIT_FOREVER.
//
//   seeds_reader [--name NAME] [--count N]   (default: sample_mailslot; run until stopped)
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

int main(int argc, char** argv)
{
    std::string name = R"(\\.\mailslot\sample_mailslot)";
    long limit = -1; // records to read before exiting; -1: forever
    samples::po::options_description options("Options");
    options.add_options()("name", samples::po::value(&name)->default_value(name), "the mailslot")(
        "count", samples::po::value(&limit), "exit after N records (default: run until stopped)");
    samples::parse_options(argc, argv, "seeds_reader [--name NAME] [--count N]", options);

    slotbus::connection bus;
    std::error_code ec;
    bus.connect(slotbus::default_address(), ec);
    if (ec) {
        std::printf("connecting to the bus failed: %s\n", ec.message().c_str());
        return 1;
    }
    auto slot = slotbus::server_slot::create(bus, name, 0, slotbus::mailslot_wait_forever, ec);
    if (ec) {
        std::printf("CreateMailslot failed with %d\n", ec.value());
        return 1;
    }
    std::printf("Mailslot created successfully.\n");
    std::fflush(stdout);

    long read_so_far = 0;
    while (limit < 0 || read_so_far < limit) {
        slotbus::slot_info info = slot.info(ec);
        if (ec) {
            std::printf("GetMailslotInfo failed with %d.\n", ec.value());
            return 1;
        }
        std::vector<std::string> batch;
        if (info.next_size == slotbus::mailslot_no_message) {
            std::printf("Waiting for a message...\n");
            std::fflush(stdout);
            batch.push_back(slot.read(ec)); // blocks: the slot waits forever
            if (ec) {
                std::printf("ReadFile failed with %d.\n", ec.value());
                return 1;
            }
            info = slot.info();
        }
        const auto all = static_cast<std::uint32_t>(batch.size()) + info.message_count;
        for (std::uint32_t n = 1; n <= all; ++n) {
            if (n > batch.size()) {
                // Sized as info() says, like the seed's buffer of cbMessage bytes.
                std::string buffer(slot.info().next_size, '\0');
                buffer.resize(slot.read(boost::asio::buffer(buffer), ec));
                if (ec) {
                    std::printf("ReadFile failed with %d.\n", ec.value());
                    return 1;
                }
                batch.push_back(std::move(buffer));
            }
            std::printf("Contents of the mailslot: %s\nMessage #%u of %u\n", batch[n - 1].c_str(),
                        n, all);
            ++read_so_far;
        }
        std::fflush(stdout);
    }
    return 0;
}
