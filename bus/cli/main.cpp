// slotbus: the admin CLI. Readable tables for people, --json for scripts, and
// exit codes that mean something (docs/operator-guide.md, "The CLI").
#include "cli.hpp"

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <iostream>

using namespace slotbus::cli;

namespace {

const command commands[] = {
    {"ls", "[PATH]", "the tree of slots, queued counts, owners, subscriptions", cmd_ls},
    {"info", "NAME", "one slot in detail", cmd_info},
    {"send", "NAME [DATA|-]", "write records (DATA, or one per stdin line)", cmd_send},
    {"tail", "PATTERN", "print records as they arrive on matching topics", cmd_tail},
    {"req", "NAME [DATA]", "send a request envelope and print the reply", cmd_req},
    {"reply", "NAME [DATA]", "answer the requests sent to a slot (DATA, or an echo)", cmd_reply},
    {"plugins", "[start|stop|restart|enable|disable NAME | available]",
     "the supervised plugins: state, pid, restarts, last exit; start, stop or restart one; "
     "the shipped ones, enabled or not",
     cmd_plugins},
    {"logs", "NAME [-f]", "a plugin's last lines of output (--follow for more)", cmd_logs},
    {"reload", "", "read the policy, clients and plugin manifests again (as SIGHUP)", cmd_reload},
    {"stats", "", "per-slot records and bytes in/out, drops, depth; host totals", cmd_stats},
    {"bench", "[NAME]",
     "publishers and subscribers against the running host: records/s, MiB/s, latency "
     "p50/p99/p99.9",
     cmd_bench},
    {"policy", "explain", "which rule decides what a uid, plugin, host or client may do",
     cmd_policy},
    {"hosts", "", "linked hosts (state, key, round trip, traffic) and hosts heard by broadcast",
     cmd_hosts},
    {"keygen", "--dir DIR", "make this host's link key; prints its fingerprint", cmd_keygen},
    {"stop", "", "stop the host gracefully", cmd_stop},
};

void print_usage(std::ostream& out)
{
    out << "usage: slotbus [--address SOCKET] COMMAND [ARGS] [--json]\n\n"
           "The slotbus admin CLI. Names may be short (events/orders) or full\n"
           "(\\\\.\\mailslot\\events\\orders).\n\nCommands:\n";
    std::size_t width = 0;
    for (const auto& c : commands)
        width = std::max(width, std::strlen(c.name) + 1 + std::strlen(c.args));
    for (const auto& c : commands) {
        const std::string usage = std::string(c.name) + (*c.args ? " " : "") + c.args;
        out << "  " << std::left << std::setw(static_cast<int>(width + 2)) << usage << c.summary
            << '\n';
    }
    out << "\n`slotbus COMMAND --help` describes each command; `slotbus --version` prints\n"
           "the version. Exit codes: 0 ok, 1 the host refused (e.g. no such slot),\n"
           "2 usage, 3 tail ran out of time, 69 no host answers.\n";
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    common c;
    // Options before the command apply to it too.
    std::vector<std::string> leading;
    while (!args.empty() && args.front().starts_with('-')) {
        if (args.front() == "-h" || args.front() == "--help") {
            print_usage(std::cout);
            return ok;
        }
        if (args.front() == "--version") {
            std::cout << "slotbus " << slotbus::version << '\n';
            return ok;
        }
        leading.push_back(args.front());
        const bool takes_value = args.front() == "-a" || args.front() == "--address";
        args.erase(args.begin());
        if (takes_value && !args.empty()) {
            leading.push_back(args.front());
            args.erase(args.begin());
        }
    }
    if (args.empty()) {
        print_usage(std::cerr);
        return usage;
    }
    const std::string name = args.front();
    args.erase(args.begin());
    args.insert(args.begin(), leading.begin(), leading.end());
    for (const auto& cmd : commands) {
        if (name != cmd.name)
            continue;
        try {
            return cmd.run(c, args);
        } catch (const usage_error& e) {
            std::cerr << "slotbus " << e.what() << " (slotbus " << name << " --help)\n";
            return usage;
        } catch (const std::exception& e) {
            std::cerr << "slotbus " << name << ": " << e.what() << '\n';
            return failed;
        }
    }
    std::cerr << "slotbus: unknown command \"" << name
              << "\" (slotbus --help lists the commands)\n";
    return usage;
}
