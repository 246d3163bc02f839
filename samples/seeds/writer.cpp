// The seeds' "Writing to a Mailslot", on slotbus: open the slot, write two
// records, pause, write a third, close.
//
//   seeds_writer [--name NAME] [--pause-ms MS]     (defaults: sample_mailslot, 5000)
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

namespace {

bool write_slot(slotbus::client_slot& slot, std::string_view message)
{
    std::error_code ec;
    slot.write(message, ec);
    if (ec) {
        std::printf("WriteFile failed with %d.\n", ec.value());
        return false;
    }
    std::printf("Slot written to successfully.\n");
    std::fflush(stdout);
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    std::string name = R"(\\.\mailslot\sample_mailslot)";
    int pause_ms = 5000;
    samples::po::options_description options("Options");
    options.add_options()("name", samples::po::value(&name)->default_value(name), "the mailslot")(
        "pause-ms", samples::po::value(&pause_ms)->default_value(pause_ms),
        "the pause between writes, in milliseconds");
    samples::parse_options(argc, argv, "seeds_writer [--name NAME] [--pause-ms MS]", options);

    slotbus::connection bus;
    std::error_code ec;
    bus.connect(slotbus::default_address(), ec);
    if (ec) {
        std::printf("connecting to the bus failed: %s\n", ec.message().c_str());
        return 1;
    }
    auto slot = slotbus::client_slot::open(bus, name, ec);
    if (ec) {
        std::printf("CreateFile failed with %d.\n", ec.value());
        return 1;
    }

    bool ok = write_slot(slot, "Message one for mailslot.");
    ok = write_slot(slot, "Message two for mailslot.") && ok;
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    ok = write_slot(slot, "Message three for mailslot.") && ok;

    slot.close();
    return ok ? 0 : 1;
}
