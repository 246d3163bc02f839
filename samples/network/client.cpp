// The seeds' network article's clientslot.c, on slotbus: open "blort" on
// another computer by its name (CreateFile on \\HOST\mailslot\blort) and
// write records to it (WriteFile). The local host forwards them over its
// link to HOST; each write returns what HOST did with it — unlike Windows,
// where a remote write's fate is unknown.
//
//   network_client HOST [--name PATH] [--count N] [TEXT]   (defaults: blort, 1, "This is some
//   text")
#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::printf("usage: network_client HOST [--name PATH] [--count N] [TEXT]\n");
        return 2;
    }
    const std::string host = argv[1];
    std::string path = "blort", text = "This is some text";
    long count = 1;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--name" && i + 1 < argc)
            path = argv[++i];
        else if (arg == "--count" && i + 1 < argc)
            count = std::stol(argv[++i]);
        else
            text = argv[i];
    }
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
