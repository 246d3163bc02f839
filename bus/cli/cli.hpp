// The admin CLI's pieces: what every command shares (the connection, the
// answers, the tables), and the commands, one file per area.
#pragma once

#include "slotbus/slotbus.hpp"

#include <boost/json/value.hpp>
#include <boost/program_options.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace slotbus::cli {

namespace po = boost::program_options;
namespace json = boost::json;

// Exit codes, after sysexits(3) where one fits.
enum exit_code : int {
    ok = 0,
    failed = 1,       // the host answered with an error (no such slot, …)
    usage = 2,        // bad command line
    timed_out = 3,    // tail: --for ran out before --count records came
    unavailable = 69, // no host answers on the address (EX_UNAVAILABLE)
};

struct common {
    std::string address = slotbus::default_address();
    bool json = false;
};

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct command {
    const char* name;
    const char* args;
    const char* summary;
    int (*run)(common&, std::vector<std::string>&);
};

// ---- shared by the commands ---------------------------------------------------------------

/// Parses a command's own options; prints its help and returns false for --help.
bool parse(const char* name, const char* args, const char* summary, po::options_description& own,
           const po::positional_options_description& positional, common& c,
           std::vector<std::string>& argv, po::variables_map& vm);
/// Connects to the host, or exits with `unavailable` saying why not.
slotbus::connection connect(const common& c);
/// A slot name given on the command line; a malformed one is a usage error.
slotbus::slot_name name_argument(std::string_view command, const std::string& text);
/// Says what failed, with the error number, and returns the exit code for it.
int refused(std::string_view what, const std::error_code& ec);
/// An admin command's answer, or exits with the error.
json::value ask(slotbus::connection& bus, std::string_view command, std::string_view argument = {});
/// The "slots" listing at or below `prefix`, every page of it, as one answer.
json::value ask_slots(slotbus::connection& bus, std::string_view prefix);
std::string bytes_text(std::uint64_t n);
/// Columns padded to their widest cell; the last one is left ragged.
void print_table(const std::vector<std::vector<std::string>>& rows);
std::string owner_text(const json::value& owner);
/// A JSON value as text: strings bare, numbers as numbers (9.5, not 9.5E0).
std::string str(const json::value& v);
/// JSON for --json is slotbus::json_text: numbers as numbers.
using slotbus::json_text;
std::string number_text(double d);
/// JSON indented by two spaces a level, for people (`tail --pretty`).
std::string pretty_json(const json::value& v);
/// "1 writer" / "3 writers": a count and its noun, agreeing.
std::string counted(std::uint64_t n, std::string_view one, std::string_view many);
/// Milliseconds as people read them: "850 ms", "3.1 s".
std::string duration_text(std::uint64_t ms);
/// What a slot's back-pressure is doing: "2 writers held 3.1 s", or "" for none.
std::string held_text(const json::value& slot);

// ---- the commands -------------------------------------------------------------------------

int cmd_ls(common& c, std::vector<std::string>& argv);
int cmd_info(common& c, std::vector<std::string>& argv);
int cmd_send(common& c, std::vector<std::string>& argv);
int cmd_tail(common& c, std::vector<std::string>& argv);
int cmd_req(common& c, std::vector<std::string>& argv);
int cmd_reply(common& c, std::vector<std::string>& argv);
int cmd_plugins(common& c, std::vector<std::string>& argv);
int cmd_logs(common& c, std::vector<std::string>& argv);
int cmd_reload(common& c, std::vector<std::string>& argv);
int cmd_stats(common& c, std::vector<std::string>& argv);
int cmd_bench(common& c, std::vector<std::string>& argv);
int cmd_policy(common& c, std::vector<std::string>& argv);
int cmd_hosts(common& c, std::vector<std::string>& argv);
int cmd_keygen(common& c, std::vector<std::string>& argv);
int cmd_stop(common& c, std::vector<std::string>& argv);

} // namespace slotbus::cli
