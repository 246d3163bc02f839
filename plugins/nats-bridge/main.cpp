// nats-bridge: carries records between this host's slots and NATS
// (plugins/nats-bridge/README.md).
#include "bridge.hpp"

#include "slotbus/version.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/program_options.hpp>

#include <iostream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace po = boost::program_options;

int main(int argc, char** argv)
{
    std::string config_file;
    po::options_description described(
        "nats-bridge — carries records between this host's slots and NATS\n\nOptions");
    // clang-format off
    described.add_options()
        ("help,h", "print this help")
        ("version", "print the version and exit")
        ("config,c", po::value(&config_file), "the bridge's JSON config (servers, auth, tls, streams, exports, imports)")
        ("check", "check the config and exit");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, described), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "nats-bridge: " << e.what() << " (--help lists the options)\n";
        return 2;
    }
    if (vm.count("version")) {
        std::cout << "slotbus-nats-bridge " << slotbus::version << '\n';
        return 0;
    }
    if (vm.count("help")) {
        std::cout << described << '\n';
        return 0;
    }
    if (config_file.empty()) {
        std::cerr << "nats-bridge: give --config FILE\n";
        return 2;
    }
    std::string why;
    auto config = slotbus::bridge::load_config(config_file, why);
    if (!config) {
        std::cerr << "nats-bridge: " << why << '\n';
        return 2;
    }
    // A password or token in a file others may read is no secret.
    if (struct stat st{}; (!config->password.empty() || !config->token.empty()) &&
                          ::stat(config_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
        std::cerr << "nats-bridge: " << config_file
                  << " holds a password or token and may be read by others: chmod 600 it\n";
        return 2;
    }
    if (config->origin.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        config->origin = host;
    }
    if (vm.count("check")) {
        std::cout << "nats-bridge: " << config_file << ": " << config->exports.size()
                  << (config->exports.size() == 1 ? " export, " : " exports, ")
                  << config->imports.size()
                  << (config->imports.size() == 1 ? " import\n" : " imports\n");
        return 0;
    }

    slotbus::connection bus(slotbus::connection_options{"nats-bridge"});
    slotbus::connection control(slotbus::connection_options{"nats-bridge status"});
    try {
        bus.connect();
        control.connect();
    } catch (const std::exception& e) {
        std::cerr << "nats-bridge: " << e.what() << '\n';
        return 1;
    }
    const std::string me = bus.plugin_name().empty() ? "nats-bridge" : bus.plugin_name();
    int status = 0;
    {
        slotbus::bridge::bridge bridge(bus, control, std::move(*config), me);
        auto keep = boost::asio::make_work_guard(control.get_executor());
        std::thread control_thread([&] { control.run(); });
        slotbus::stop_signals stop(bus);
        try {
            bridge.start();
            bus.run();
        } catch (const std::exception& e) {
            std::cerr << "nats-bridge: " << e.what() << std::endl;
            status = 1;
        }
        bridge.stop();
        keep.reset();
        control.stop();
        control_thread.join();
        // What is still queued for the bridge (messages posted by libnats,
        // writes' results) runs now, while it lives; then libnats's threads end.
        bus.close();
        control.close();
        nats_CloseAndWait(2000);
    }
    std::cerr << "nats-bridge: stopped" << std::endl;
    return status;
}
