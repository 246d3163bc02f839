#include "host_fixture.hpp"

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

namespace slotbus::test {

host::host(const std::vector<std::string>& extra_args) : socket_((dir_.path / "bus.sock").string())
{
    std::vector<std::string> args{"--socket", socket_, "--verbose"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<child>(SLOTBUSD_PATH, args);
    if (!process_->wait_for_line("ready on", 10s))
        BOOST_FAIL("slotbusd did not get ready; its log:\n" << log());
}

host::~host()
{
    const int code = process_->stop();
    namespace ut = boost::unit_test;
    const bool failed =
        !ut::results_collector.results(ut::framework::current_test_case().p_id).passed();
    if (failed || code != 0)
        BOOST_TEST_MESSAGE("slotbusd exited " << code << "; its log:\n" << log());
    BOOST_CHECK_MESSAGE(code == 0,
                        "slotbusd did not stop cleanly on SIGTERM (exit " << code << ")");
}

std::unique_ptr<child> peer(const host& h, const std::vector<std::string>& args)
{
    return std::make_unique<child>(SLOTBUS_PEER_PATH, args, std::vector<std::string>{h.env()});
}

std::vector<std::string> records_of(const child& peer)
{
    std::vector<std::string> out;
    for (const auto& line : peer.lines())
        if (line.rfind("record ", 0) == 0)
            out.push_back(line.substr(line.find(' ', 7) + 1));
    return out;
}

} // namespace slotbus::test
