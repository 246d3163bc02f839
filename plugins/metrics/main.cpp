// metrics: publishes the host's statistics as an envelope on a topic at a
// fixed interval (plugins/metrics/README.md).
#include "slotbus/slotbus.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>

#include <chrono>
#include <iostream>

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

/// The host's "stats" answer, trimmed to what a dashboard plots: the totals,
/// and the busiest slots (by depth, then records in) up to `max_slots`.
json::object summary_of(json::value stats, std::size_t max_slots)
{
    auto& all = stats.as_object();
    auto slots = std::move(all["slots"].as_array());
    all.erase("slots");
    std::sort(slots.begin(), slots.end(), [](const json::value& a, const json::value& b) {
        auto key = [](const json::value& v) {
            return std::pair(v.at("depth").to_number<std::uint64_t>(),
                             v.at("records_in").to_number<std::uint64_t>());
        };
        return key(a) > key(b);
    });
    if (slots.size() > max_slots)
        slots.resize(max_slots);
    all["slots"] = std::move(slots);
    return std::move(all);
}

} // namespace

int main(int argc, char** argv)
{
    std::string topic = "slotbus/metrics/host";
    std::uint64_t interval_ms = 5000, max_slots = 20, count = 0;
    po::options_description described("metrics — publishes the host's statistics\n\nOptions");
    // clang-format off
    described.add_options()
        ("help,h", "print this help")
        ("version", "print the version and exit")
        ("topic,t", po::value(&topic)->default_value(topic), "where the envelopes go")
        ("interval", po::value(&interval_ms)->default_value(interval_ms), "milliseconds between envelopes")
        ("max-slots", po::value(&max_slots)->default_value(max_slots), "the busiest slots included")
        ("count", po::value(&count), "exit after this many envelopes (default: run until stopped)");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, described), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "metrics: " << e.what() << " (--help lists the options)\n";
        return 2;
    }
    if (vm.count("version")) {
        std::cout << "slotbus-metrics " << slotbus::version << '\n';
        return 0;
    }
    if (vm.count("help")) {
        std::cout << described << '\n';
        return 0;
    }

    slotbus::connection bus(slotbus::connection_options{"metrics"});
    bus.connect();
    slotbus::publisher out(bus, "metrics");
    const std::string subject = slotbus::publisher::subject_of(topic);
    boost::asio::steady_timer timer(bus.get_executor());
    slotbus::stop_signals stop(bus);

    std::uint64_t published = 0, unheard = 0;
    std::function<void()> tick;
    auto again = [&] {
        timer.expires_after(std::chrono::milliseconds(interval_ms));
        timer.async_wait([&](boost::system::error_code wait_ec) {
            if (!wait_ec)
                tick();
        });
    };
    const std::string ask = json::serialize(json::object{{"top", max_slots}});
    tick = [&] {
        slotbus::async_admin(
            bus, "stats", ask, [&](boost::system::error_code ec, json::value stats) {
                // The connection gone is the end (the host stops us, or a
                // restart reconnects us); anything else skips one interval:
                // nothing a client can create in the tree may stop us.
                if (ec == slotbus::error::broken_pipe) {
                    std::cerr << "metrics: stats: " << ec.message() << std::endl;
                    bus.stop();
                    return;
                }
                if (ec || !stats.is_object() || !stats.as_object().contains("slots")) {
                    std::cerr << "metrics: stats: "
                              << (ec ? ec.message() : "an answer without slots")
                              << "; trying again next interval" << std::endl;
                    return again();
                }
                auto e = slotbus::make_envelope(out.source(), "slotbus.host.stats", subject,
                                                summary_of(std::move(stats), max_slots));
                std::error_code publish_ec;
                out.publish(topic, e, publish_ec);
                // Nobody listening is normal: the figures are simply not wanted now.
                if (publish_ec && publish_ec != slotbus::error::file_not_found)
                    std::cerr << "metrics: publish: " << publish_ec.message() << std::endl;
                unheard += publish_ec == slotbus::error::file_not_found;
                if (count && ++published >= count) {
                    bus.stop();
                    return;
                }
                again();
            });
    };
    std::cerr << "metrics: publishing slotbus.host.stats on " << topic << " every " << interval_ms
              << " ms" << std::endl;
    tick();
    bus.run();
    std::cerr << "metrics: stopped (" << unheard << " intervals nobody listened)" << std::endl;
    return 0;
}
