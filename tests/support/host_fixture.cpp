#include "host_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace slotbus::test {

host::host(const std::vector<std::string>& extra_args) : host(extra_args, {}) {}

host::host(const std::vector<std::string>& extra_args, const std::vector<std::string>& launcher)
    : socket_((dir_.path / "bus.sock").string())
{
    std::vector<std::string> args{"--socket", socket_, "--verbose"};
    // The suite again with other host defaults: e.g. "--lane-threshold 1"
    // sends every record a local writer writes through its lane.
    if (const char* more = std::getenv("SLOTBUS_TEST_HOST_ARGS")) {
        std::istringstream words(more);
        for (std::string word; words >> word;)
            args.push_back(word);
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    if (launcher.empty()) {
        process_ = std::make_unique<child>(SLOTBUSD_PATH, args);
    } else {
        std::vector<std::string> through(launcher.begin() + 1, launcher.end());
        through.push_back(SLOTBUSD_PATH);
        through.insert(through.end(), args.begin(), args.end());
        process_ = std::make_unique<child>(launcher.front(), through);
    }
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

boost::json::value cli_result::json() const
{
    boost::system::error_code ec;
    auto value = boost::json::parse(out, ec);
    BOOST_CHECK_MESSAGE(!ec, "slotbus printed no JSON: " << out << err);
    return value;
}

cli_result cli(const host& h, const std::vector<std::string>& args,
               std::chrono::milliseconds deadline)
{
    child run(SLOTBUS_CLI_PATH, args, {h.env()});
    cli_result r;
    const auto code = run.wait_exit(deadline);
    if (!code)
        run.stop(1s);
    r.code = code.value_or(-1);
    r.out = run.stdout_text();
    r.err = run.stderr_text();
    return r;
}

boost::json::value plugin_entry(const host& h, const std::string& name)
{
    const auto r = cli(h, {"plugins", "--json"});
    if (r.code != 0)
        return nullptr;
    const auto answer = r.json();
    for (const auto& p : answer.at("plugins").as_array())
        if (p.at("name").as_string() == name)
            return p;
    return nullptr;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

bool alive(int pid)
{
    if (pid <= 0 || ::kill(pid, 0) != 0)
        return false;
    std::ifstream status("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(status, text);
    const auto after_name = text.rfind(')');
    return after_name == std::string::npos || text.substr(after_name + 2, 1) != "Z";
}

void write_manifest(const std::filesystem::path& dir, const std::string& name,
                    const std::string& json)
{
    std::filesystem::create_directories(dir);
    std::ofstream(dir / (name + ".json")) << json;
}

} // namespace slotbus::test
