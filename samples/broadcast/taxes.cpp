// The seeds' network article's client: one write to every "sue" mailslot in
// the taxes folder of a domain's computers. `*` names this computer's own
// domain (the article's primary domain); another name, a domain by its
// name, as in \\WorkGroup\mailslot\taxes\sue.
//
//   broadcast_taxes [DOMAIN] [--count N] [TEXT]   (defaults: *, 1, "Sue's 1040 is in")
#include "sample_options.hpp"

#include <slotbus/slotbus.hpp>

#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv)
{
    std::string domain = "*", text = "Sue's 1040 is in";
    long count = 1;
    samples::po::options_description options("Options");
    options.add_options()("domain", samples::po::value(&domain),
                          "the domain; * is this computer's")("text", samples::po::value(&text),
                                                              "what to write")(
        "count", samples::po::value(&count)->default_value(count), "how many writes");
    samples::po::positional_options_description positional;
    positional.add("domain", 1).add("text", 1);
    samples::parse_options(argc, argv, "broadcast_taxes [DOMAIN] [TEXT] [--count N]", options,
                           positional);
    slotbus::connection bus;
    std::error_code ec;
    bus.connect(slotbus::default_address(), ec);
    if (ec) {
        std::printf("connecting to the bus failed: %s\n", ec.message().c_str());
        return 1;
    }
    const std::string name = "\\\\" + domain + "\\mailslot\\taxes\\sue";
    auto slot = slotbus::client_slot::open(bus, name, ec);
    if (ec) { // 53: no such host or domain
        std::printf("CreateFile failed: %d\n", ec.value());
        return 1;
    }
    for (long n = 0; n < count; ++n) {
        // At most 424 bytes: a longer broadcast fails with 53, and nothing is sent.
        const auto delivered = slot.write(text, ec);
        if (ec) {
            std::printf("WriteFile error: %d\n", ec.value());
            return 1;
        }
        // As on Windows, nothing comes back from the other computers: the
        // result counts only this computer's slots that took it.
        std::printf("Sent %zu bytes to %s (%u slot%s on this computer).\n", text.size(),
                    name.c_str(), delivered, delivered == 1 ? "" : "s");
        std::fflush(stdout);
    }
    return 0;
}
