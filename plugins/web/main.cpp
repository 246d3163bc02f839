// web: a live view of the bus in a browser, JSON endpoints in the spirit of
// NATS monitoring, and /metrics for Prometheus (plugins/web/README.md).
#include "http_server.hpp"
#include "live_tail.hpp"
#include "monitor.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/program_options.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>

namespace po = boost::program_options;
namespace asio = boost::asio;

namespace {

/// The first line of a file, without trailing whitespace.
std::string first_line(const std::string& path)
{
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
        throw std::runtime_error("cannot read the token file " + path);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
        line.pop_back();
    if (line.size() < 16)
        throw std::runtime_error("the token in " + path + " is shorter than 16 characters");
    return line;
}

} // namespace

int main(int argc, char** argv)
{
    std::string listen = "127.0.0.1", token_file, port_file;
    std::uint16_t port = 8233;
    std::vector<std::string> allowed_hosts;
    slotbus::web::monitor_options watch;
    slotbus::web::tail_options tail;
    slotbus::web::http_options http;
    std::uint64_t interval_ms = 1000, request_timeout_ms = 10000, write_timeout_ms = 30000;
    const char* plugin = std::getenv("SLOTBUS_PLUGIN");
    std::string name = plugin && *plugin ? plugin : "web";
    po::options_description described("web — a live view of the bus, and /metrics\n\nOptions");
    // clang-format off
    described.add_options()
        ("help,h", "print this help")
        ("version", "print the version and exit")
        ("listen", po::value(&listen)->default_value(listen),
         "the address to serve on (anything but loopback: see the operator guide first)")
        ("port", po::value(&port)->default_value(port), "the TCP port (0: any free one)")
        ("port-file", po::value(&port_file), "write the port served on to this file")
        ("token-file", po::value(&token_file),
         "ask every request but /healthz for the token in this file")
        ("allow-host", po::value(&allowed_hosts)->composing(),
         "a Host header name to accept besides localhost (repeatable)")
        ("interval", po::value(&interval_ms)->default_value(interval_ms),
         "milliseconds between looks at the host")
        ("max-slots", po::value(&watch.max_slots)->default_value(watch.max_slots),
         "slots of the tree listed per look")
        ("max-slot-series", po::value(&http.max_slot_series)->default_value(http.max_slot_series),
         "slots with series of their own in /metrics")
        ("tail-rate", po::value(&tail.max_rate)->default_value(tail.max_rate),
         "records a second the live tail takes (the rest are dropped, and counted)")
        ("max-tails", po::value(&tail.max_feeds)->default_value(tail.max_feeds),
         "browsers tailing at once")
        ("max-connections", po::value(&http.max_connections)->default_value(http.max_connections),
         "HTTP connections at once (past it: 503 at once)")
        ("request-timeout", po::value(&request_timeout_ms)->default_value(request_timeout_ms),
         "milliseconds a client has to send a whole request")
        ("write-timeout", po::value(&write_timeout_ms)->default_value(write_timeout_ms),
         "milliseconds a client may take nothing of an answer or the tail before it is closed")
        ("name", po::value(&name)->default_value(name),
         "names the tail's inbox: slotbus/web/NAME/tail");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, described), vm);
        po::notify(vm);
        boost::system::error_code address_ec;
        http.listen = {asio::ip::make_address(listen, address_ec), port};
        if (address_ec)
            throw std::runtime_error("--listen " + listen + ": not an IP address");
        if (!token_file.empty())
            http.token = first_line(token_file);
    } catch (const std::exception& e) {
        std::cerr << "web: " << e.what() << " (--help lists the options)" << std::endl;
        return 2;
    }
    if (vm.count("version")) {
        std::cout << "slotbus-web " << slotbus::version << '\n';
        return 0;
    }
    if (vm.count("help")) {
        std::cout << described << '\n';
        return 0;
    }
    for (auto& h : allowed_hosts)
        for (auto& c : h)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    http.allowed_hosts = allowed_hosts;
    watch.interval = std::chrono::milliseconds(interval_ms);
    http.request_timeout = std::chrono::milliseconds(request_timeout_ms);
    http.write_timeout = std::chrono::milliseconds(write_timeout_ms);
    tail.inbox = "slotbus/web/" + name + "/tail";

    slotbus::connection bus(slotbus::connection_options{"web"});
    bus.connect();
    slotbus::web::monitor host(bus, watch);
    slotbus::web::live_tail live(bus, tail);
    slotbus::web::http_server server(bus.get_executor(), http, host, live);
    int exit_code = 0;
    const auto stop = [&] {
        server.stop();
        live.stop();
        host.stop();
        bus.stop();
    };
    slotbus::stop_signals on_signal(bus, [&](int) { stop(); });

    std::error_code ec;
    server.start(ec);
    if (ec) {
        std::cerr << "web: cannot serve on " << listen << ":" << port << ": " << ec.message()
                  << std::endl;
        return 1;
    }
    if (!port_file.empty())
        std::ofstream(port_file) << server.port() << '\n';
    live.start([&](std::error_code tail_ec) {
        if (tail_ec)
            std::cerr << "web: the live tail's inbox " << tail.inbox << ": " << tail_ec.message()
                      << "; the page shows no tail" << std::endl;
    });
    host.start([&] {
        std::cerr << "web: the host connection is gone; stopping" << std::endl;
        exit_code = 1;
        stop();
    });
    const auto shown = http.listen.address().is_v6() ? "[" + listen + "]" : listen;
    std::cout << "web: serving http://" << shown << ":" << server.port() << "/"
              << (http.token.empty() ? "" : " (token required)") << std::endl;
    bus.run();
    std::cerr << "web: stopped" << std::endl;
    return exit_code;
}
