// slotbusd: parse the options, run the host.
#include "log.hpp"
#include "server.hpp"

#include "slotbus/address.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace po = boost::program_options;
using slotbus::bus::log;

namespace {

// --topic-types FILE: {"events/orders/**": ["orders.created", ...], ...}
bool load_topic_types(const std::string& path, std::vector<slotbus::bus::topic_types>& out)
{
    std::ifstream in(path);
    if (!in) {
        log("--topic-types: cannot read ", path);
        return false;
    }
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    const auto json = boost::json::parse(text.str(), ec);
    if (ec || !json.is_object()) {
        log("--topic-types ", path, ": not a JSON object of \"pattern\": [\"type\", ...]");
        return false;
    }
    for (const auto& [key, value] : json.as_object()) {
        std::error_code pec;
        auto pattern = slotbus::topic_pattern::parse(key, pec);
        const auto* types = value.if_array();
        if (pec || !types) {
            log("--topic-types ", path, ": \"", std::string_view(key),
                pec ? "\" is not a topic pattern" : "\" must map to an array of types");
            return false;
        }
        slotbus::bus::topic_types rule{std::move(pattern), {}};
        for (const auto& type : *types) {
            if (!type.is_string()) {
                log("--topic-types ", path, ": \"", std::string_view(key),
                    "\" lists a type that is not a string");
                return false;
            }
            rule.accepted.emplace_back(type.get_string());
        }
        out.push_back(std::move(rule));
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    slotbus::bus::host_options options;
    auto& limits = options.limits;
    std::uint64_t slot_budget = limits.default_slot_budget;
    std::string topic_types_file;

    po::options_description described("slotbusd — the slotbus host\n\nOptions");
    // clang-format off
    described.add_options()
        ("help,h", "print this help and exit")
        ("socket,s", po::value(&options.socket_path)->default_value(slotbus::default_socket_path()),
         "Unix socket to listen on (created mode 0600; its directory is created 0700)")
        ("max-record-size", po::value(&limits.max_record_size)->default_value(limits.max_record_size),
         "largest record the host accepts, in bytes; larger frames close the connection")
        ("slot-budget", po::value(&slot_budget)->default_value(slot_budget),
         "unread bytes a slot holds before its overflow policy acts (when its creator asks for none)")
        ("max-slot-budget", po::value(&limits.max_slot_budget)->default_value(limits.max_slot_budget),
         "the largest byte budget a slot's creator may ask for")
        ("max-handles", po::value(&limits.max_handles)->default_value(limits.max_handles),
         "open slot handles per connection")
        ("max-subscriptions", po::value(&limits.max_subscriptions)->default_value(limits.max_subscriptions),
         "topic patterns per slot")
        ("push-window", po::value(&limits.max_window)->default_value(limits.max_window),
         "records the host pushes ahead to one reader at most")
        ("push-bytes", po::value(&limits.push_bytes)->default_value(limits.push_bytes),
         "bytes the host pushes ahead to one reader at most")
        ("max-outbox", po::value(&options.max_outbox)->default_value(options.max_outbox),
         "unsent bytes to one client before the host stops reading from it")
        ("max-held", po::value(&options.max_held)->default_value(options.max_held),
         "bytes of a client's frames the host keeps behind a write to a full slot before it "
         "stops reading from that client (the SDK keeps well under it)")
        ("domain", po::value(&limits.domain)->default_value(limits.domain),
         "the primary domain: \\\\DOMAIN\\mailslot\\ names broadcast")
        ("topic-types", po::value(&topic_types_file),
         "JSON file {\"pattern\": [\"type\", ...]}: writes to matching names must be envelopes "
         "of those types, else error 13 for that record")
        ("verbose,v", po::bool_switch(&options.verbose), "log every connection");
    // clang-format on

    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, described), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "slotbusd: " << e.what() << "\n\n" << described << '\n';
        return 2;
    }
    if (vm.count("help")) {
        std::cout << described
                  << "\nslotbusd prints \"slotbusd: ready on PATH\" on stdout once it accepts\n"
                     "clients. SIGTERM or SIGINT stop it gracefully and remove the socket.\n";
        return 0;
    }
    limits.default_slot_budget = slot_budget;
    if (!topic_types_file.empty() && !load_topic_types(topic_types_file, limits.declared_types))
        return 2;
    char host_name[256] = {};
    ::gethostname(host_name, sizeof host_name - 1);
    limits.host_name = host_name;

    boost::asio::io_context io(1);
    slotbus::bus::server host(io, options);
    std::error_code ec;
    host.start(ec);
    if (ec) {
        log("cannot listen on ", options.socket_path, ": ", ec.message());
        return 1;
    }
    std::cout << "slotbusd: ready on " << host.socket_path() << std::endl;
    io.run();
    log("stopped");
    return 0;
}
