// The seeds' network article's clientslot.c, on slotbus: open "blort" on
// another computer by its name (CreateFile on \\HOST\mailslot\blort) and
// write records to it (WriteFile). The local host forwards them over its
// link to HOST; each write returns what HOST did with it — unlike Windows,
// where a remote write's fate is unknown.
//
//   network_client HOST [--name PATH] [--count N] [TEXT]   (defaults: blort, 1, "This is some
//   text")
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv)
{
    std::string host, path = "blort", text = "This is some text";
    long count = 1;
    samples::po::options_description options("Options");
    options.add_options()("host", samples::po::value(&host)->required(),
                          "the computer to write to")("text", samples::po::value(&text),
                                                      "what to write")(
        "name", samples::po::value(&path)->default_value(path), "the mailslot's path on HOST")(
        "count", samples::po::value(&count)->default_value(count), "how many writes");
    samples::po::positional_options_description positional;
    positional.add("host", 1).add("text", 1);
    samples::parse_options(argc, argv, "network_client HOST [TEXT] [--name PATH] [--count N]",
                           options, positional);
    slotbus::connection bus;
    std::error_code ec;
    bus.connect(slotbus::default_address(), ec);
    if (ec) {
        std::printf("connecting to the bus failed: %s\n", ec.message().c_str());
        return 1;
    }
    const std::string name = "\\\\" + host + "\\mailslot\\" + path;
    auto slot = slotbus::client_slot::open(bus, name, ec);
    if (ec) { // 53: HOST is not a peer of this host
        std::printf("CreateFile failed: %d\n", ec.value());
        return 1;
    }
    for (long n = 0; n < count; ++n) {
        const auto delivered = slot.write(text, ec);
        if (ec) { // 2: no such slot there; 65: HOST does not let this host write it; 53: link down
            std::printf("WriteFile error: %d\n", ec.value());
            return 1;
        }
        std::printf("Wrote %zu bytes to %s (delivered to %u slot%s there).\n", text.size(),
                    name.c_str(), delivered, delivered == 1 ? "" : "s");
        std::fflush(stdout);
    }
    return 0;
}
