// slotbus: the admin CLI. Readable tables for people, --json for scripts, and
// exit codes that mean something (docs/operator-guide.md, "The CLI").
#include "slotbus/slotbus.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "transport/tls/host_key.hpp"
#include "transport/udp/datagram.hpp"

namespace po = boost::program_options;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

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

// ---- helpers ------------------------------------------------------------------------------

/// Parses a command's own options; prints its help and returns false for --help.
bool parse(const char* name, const char* args, const char* summary, po::options_description& own,
           const po::positional_options_description& positional, common& c,
           std::vector<std::string>& argv, po::variables_map& vm)
{
    own.add_options()("address,a", po::value(&c.address),
                      "the host's socket (default: $SLOTBUS_ADDRESS, else the default socket)")(
        "json", po::bool_switch(&c.json),
        "print JSON for scripts instead of a table")("help,h", "print this help");
    try {
        po::store(po::command_line_parser(argv).options(own).positional(positional).run(), vm);
        if (vm.count("help")) { // before notify, which insists on the required arguments
            std::cout << "usage: slotbus " << name << ' ' << args << "\n\n"
                      << summary << "\n\n"
                      << own << '\n';
            return false;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(std::string(name) + ": " + e.what());
    }
    return true;
}

slotbus::connection connect(const common& c)
{
    slotbus::connection bus(slotbus::connection_options{"slotbus-cli", 256, ""});
    std::error_code ec;
    bus.connect(c.address, ec);
    if (ec == slotbus::error::access_denied) { // the listener is not ours to trust
        std::cerr << "slotbus: " << bus.last_failure() << '\n';
        std::exit(unavailable);
    }
    if (ec) {
        std::cerr << "slotbus: no host answers on " << slotbus::socket_path_of(c.address) << " ("
                  << ec.message() << ")\n";
        std::exit(unavailable);
    }
    return bus;
}

/// Says what failed, with the error number, and returns the exit code for it.
// A slot name given on the command line; a malformed one is a usage error.
slotbus::slot_name name_argument(std::string_view command, const std::string& text)
{
    std::error_code ec;
    auto name = slotbus::slot_name::parse(text, ec);
    if (ec)
        throw usage_error(std::string(command) + ": " + text + ": " + ec.message());
    return name;
}

int refused(std::string_view what, const std::error_code& ec)
{
    std::cerr << "slotbus: " << what << ": " << ec.message() << " (error " << ec.value() << ")\n";
    return ec == slotbus::error::broken_pipe ? unavailable : failed;
}

json::value ask(slotbus::connection& bus, std::string_view command, std::string_view argument = {})
{
    std::error_code ec;
    auto answer = slotbus::admin(bus, command, argument, ec);
    if (ec)
        std::exit(refused(command, ec));
    return answer;
}

/// The "slots" listing at or below `prefix`, every page of it, as one answer.
json::value ask_slots(slotbus::connection& bus, std::string_view prefix)
{
    std::error_code ec;
    auto all = slotbus::list_slots(bus, prefix, ec);
    if (ec)
        std::exit(refused("slots", ec));
    return json::object{{"slots", std::move(all)}};
}

std::string bytes_text(std::uint64_t n)
{
    std::ostringstream out;
    if (n < 10 * 1024)
        out << n << " B";
    else if (n < 10 * 1024 * 1024)
        out << n / 1024 << " KiB";
    else
        out << n / (1024 * 1024) << " MiB";
    return out.str();
}

/// Columns padded to their widest cell; the last one is left ragged.
void print_table(const std::vector<std::vector<std::string>>& rows)
{
    std::vector<std::size_t> width;
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) {
            width.resize(std::max(width.size(), row.size()));
            width[i] = std::max(width[i], row[i].size());
        }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size())
                line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        std::cout << line << '\n';
    }
}

std::string owner_text(const json::value& owner)
{
    const auto& o = owner.as_object();
    const auto plugin = json::value_to<std::string>(o.at("plugin"));
    const auto pid = o.at("pid").to_number<std::int64_t>();
    if (!plugin.empty())
        return "plugin " + plugin + " (pid " + std::to_string(pid) + ")";
    return json::value_to<std::string>(o.at("client")) + " (pid " + std::to_string(pid) + ")";
}

std::string str(const json::value& v)
{
    if (v.is_string())
        return std::string(v.get_string());
    return json::serialize(v);
}

// ---- commands -----------------------------------------------------------------------------

int cmd_ls(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("path", 1);
    std::string path;
    own.add_options()("path", po::value(&path), "list only the slots at or below this path");
    po::variables_map vm;
    if (!parse("ls", "[PATH] [--json]",
               "The tree of slots: queued records, owner and subscriptions of each.", own,
               positional, c, argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask_slots(bus, path);
    if (c.json) {
        std::cout << json::serialize(answer) << '\n';
        return ok;
    }
    const auto& slots = answer.at("slots").as_array();
    if (slots.empty()) {
        std::cout << (path.empty() ? "no slots\n" : "no slots at or below " + path + "\n");
        return ok;
    }
    // Directories once each, slots below them, indented by depth.
    std::vector<std::vector<std::string>> rows{{"SLOT", "QUEUED", "OWNER", "SUBSCRIBED TO"}};
    std::vector<std::string> shown; // the directory components printed so far
    for (const auto& v : slots) {
        const auto& s = v.as_object();
        std::vector<std::string> parts;
        std::stringstream components(json::value_to<std::string>(s.at("path")));
        for (std::string part; std::getline(components, part, '\\');)
            parts.push_back(part);
        std::size_t common_depth = 0;
        while (common_depth < shown.size() && common_depth + 1 < parts.size() &&
               slotbus::fold_case(shown[common_depth]) == slotbus::fold_case(parts[common_depth]))
            ++common_depth;
        shown.resize(common_depth);
        for (std::size_t d = common_depth; d + 1 < parts.size(); ++d) {
            rows.push_back({std::string(2 * d, ' ') + parts[d] + "\\", "", "", ""});
            shown.push_back(parts[d]);
        }
        std::string patterns;
        for (const auto& p : s.at("subscriptions").as_array())
            patterns += (patterns.empty() ? "" : ", ") + std::string(p.get_string());
        const auto depth = s.at("depth").to_number<std::uint64_t>();
        const auto queued_bytes = s.at("queued_bytes").to_number<std::uint64_t>();
        rows.push_back({std::string(2 * (parts.size() - 1), ' ') + parts.back(),
                        std::to_string(depth) + " (" + bytes_text(queued_bytes) + ")",
                        owner_text(s.at("owner")), patterns});
    }
    print_table(rows);
    return ok;
}

json::object const* find_slot(const json::value& answer, const slotbus::slot_name& name)
{
    for (const auto& v : answer.at("slots").as_array())
        if (slotbus::fold_case(v.at("path").as_string()) == name.key())
            return &v.as_object();
    return nullptr;
}

int cmd_info(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("name", 1);
    std::string name_text;
    own.add_options()("name", po::value(&name_text)->required(), "the slot (short form accepted)");
    po::variables_map vm;
    if (!parse("info", "NAME [--json]",
               "One slot: limits, queue, owner, readers, subscriptions and traffic.", own,
               positional, c, argv, vm))
        return ok;
    const auto name = name_argument("info", name_text);
    auto bus = connect(c);
    const auto answer = ask_slots(bus, name.str());
    const auto* slot = find_slot(answer, name);
    if (!slot) {
        std::cerr << "slotbus: no slot " << name.str() << " (error 2)\n";
        return failed;
    }
    if (c.json) {
        std::cout << json::serialize(*slot) << '\n';
        return ok;
    }
    const auto timeout = slot->at("read_timeout").to_number<std::uint64_t>();
    const auto next = slot->at("next_size").to_number<std::uint64_t>();
    std::vector<std::vector<std::string>> rows{
        {"name:", str(slot->at("name"))},
        {"owner:", owner_text(slot->at("owner"))},
        {"readers:", str(slot->at("readers"))},
        {"queued:", str(slot->at("depth")) + " records, " +
                        bytes_text(slot->at("queued_bytes").to_number<std::uint64_t>())},
        {"next record:",
         next == slotbus::mailslot_no_message ? "none" : std::to_string(next) + " B"},
        {"max record:", slot->at("max_message_size").to_number<std::uint64_t>() == 0
                            ? "any size"
                            : str(slot->at("max_message_size")) + " B"},
        {"read timeout:",
         timeout == slotbus::mailslot_wait_forever ? "forever" : std::to_string(timeout) + " ms"},
        {"budget:", bytes_text(slot->at("byte_budget").to_number<std::uint64_t>()) +
                        ", when full " + str(slot->at("overflow"))},
        {"records in/out:", str(slot->at("records_in")) + " / " + str(slot->at("records_out"))},
        {"bytes in/out:", str(slot->at("bytes_in")) + " / " + str(slot->at("bytes_out"))},
        {"dropped:", str(slot->at("dropped"))},
    };
    for (const auto& p : slot->at("subscriptions").as_array())
        rows.push_back({"subscribed to:", std::string(p.get_string())});
    print_table(rows);
    return ok;
}

/// A name whose writes are broadcasts: `\\*\...`, or `\\NAME\...` where NAME
/// is the host's domain or one its broadcasts heard of.
bool broadcast_domain(slotbus::connection& bus, const slotbus::slot_name& name)
{
    if (name.scope() == slotbus::name_scope::broadcast)
        return true;
    if (name.scope() != slotbus::name_scope::remote)
        return false;
    // Only to word the summary: one who may send but not list is not told.
    std::error_code ec;
    const auto answer = slotbus::admin(bus, "hosts", {}, ec);
    if (ec || !answer.is_object())
        return false;
    const auto* b = answer.as_object().if_contains("broadcast");
    if (!b || !b->is_object())
        return false;
    const auto server = slotbus::fold_case(name.server());
    if (b->at("domain").as_string() == server)
        return true;
    for (const auto& h : b->at("hosts").as_array())
        if (h.at("domain").is_string() && h.at("domain").as_string() == server)
            return true;
    return false;
}

int cmd_send(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("name", 1).add("data", 1);
    std::string name_text, data, type, source = "/cli/slotbus";
    own.add_options()("name", po::value(&name_text)->required(), "the slot or topic")(
        "data", po::value(&data), "the record; without it (or with -), one record per stdin line")(
        "type,t", po::value(&type),
        "wrap each record in a CloudEvents envelope of this type (data: JSON if it parses, "
        "else a string)")("source", po::value(&source)->default_value(source),
                          "the envelope's source, with --type");
    po::variables_map vm;
    if (!parse("send", "NAME [DATA|-] [--type TYPE] [--json]",
               "Writes records to a slot or topic; prints how many slots received them.", own,
               positional, c, argv, vm))
        return ok;
    const auto name = name_argument("send", name_text);
    std::error_code ec;
    auto bus = connect(c);
    auto slot = slotbus::client_slot::open(bus, name.str(), ec);
    if (ec)
        return refused(name.str(), ec);
    auto record_of = [&](const std::string& text) {
        if (type.empty())
            return text;
        boost::system::error_code parse_ec;
        json::value payload = json::parse(text, parse_ec);
        if (parse_ec)
            payload = json::string(text);
        return slotbus::serialize(
            slotbus::make_envelope(source, type, name.path(), std::move(payload)));
    };
    std::uint64_t records = 0, delivered = 0, errors = 0;
    std::error_code first_error;
    auto count = [&](boost::system::error_code e, std::uint32_t n) {
        ++records;
        delivered += n;
        if (e) {
            ++errors;
            if (!first_error)
                first_error = e;
        }
    };
    if (vm.count("data") && data != "-") {
        const auto n = slot.write(boost::asio::buffer(record_of(data)), ec);
        count(ec, n);
    } else {
        // Pipelined: every line is written at once; the results come back in order.
        std::uint64_t lines = 0;
        for (std::string line; std::getline(std::cin, line); ++lines) {
            auto record = std::make_shared<std::string>(record_of(line));
            slot.async_write(boost::asio::buffer(*record),
                             [&, record](boost::system::error_code e, std::uint32_t n) {
                                 count(e, n);
                                 if (records == lines)
                                     bus.stop();
                             });
        }
        if (records < lines)
            bus.run(); // until the last result is in
    }
    if (c.json) {
        std::cout << json::serialize(json::object{{"records", records},
                                                  {"delivered", delivered},
                                                  {"failed", errors},
                                                  {"error", first_error.value()}})
                  << '\n';
    } else {
        std::cout << "sent " << records << (records == 1 ? " record" : " records") << " to "
                  << name.str() << ": " << delivered
                  << (delivered == 1 ? " delivery" : " deliveries");
        if (broadcast_domain(bus, name))
            std::cout << " on this host (a broadcast: what other hosts took is not known)";
        if (errors)
            std::cout << ", " << errors << " failed (first: " << first_error.message() << ", error "
                      << first_error.value() << ")";
        std::cout << '\n';
    }
    return errors ? failed : ok;
}

int cmd_tail(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("pattern", 1);
    std::string pattern_text, inbox_name;
    std::uint64_t count = 0, for_ms = 0;
    own.add_options()("pattern", po::value(&pattern_text)->required(),
                      "a topic pattern: events/orders, events/*, events/**")(
        "count,n", po::value(&count), "exit after this many records")(
        "inbox", po::value(&inbox_name),
        "the temporary slot's name (default slotbus/cli/tail-PID, which only the host's uid "
        "may create)")("for", po::value(&for_ms), "exit after this many milliseconds");
    po::variables_map vm;
    if (!parse("tail", "PATTERN [--count N] [--for MS] [--inbox NAME] [--json]",
               "Prints records as they arrive on topics matching PATTERN (through a temporary\n"
               "slot that drops its oldest records rather than slow the bus down).",
               own, positional, c, argv, vm))
        return ok;
    std::error_code ec;
    const auto pattern = slotbus::topic_pattern::parse(pattern_text, ec);
    if (ec)
        throw usage_error("tail: " + pattern_text + ": " + ec.message());
    auto bus = connect(c);
    slotbus::slot_options options;
    options.read_timeout = 200;
    options.overflow = slotbus::overflow_policy::drop_oldest;
    if (inbox_name.empty())
        inbox_name = "slotbus/cli/tail-" + std::to_string(::getpid());
    auto inbox = slotbus::server_slot::create(bus, inbox_name, options, ec);
    auto subscription = ec ? slotbus::subscription{} : inbox.subscribe(pattern.str(), ec);
    if (ec)
        return refused("tail " + pattern.str(), ec);
    std::cerr << "slotbus: tailing " << pattern.str() << '\n';
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(for_ms);
    std::uint64_t seen = 0;
    while (count == 0 || seen < count) {
        if (for_ms && std::chrono::steady_clock::now() >= until)
            return count ? timed_out : ok;
        auto record = inbox.read_record(ec);
        if (ec == slotbus::error::sem_timeout)
            continue;
        if (ec)
            return refused("tail", ec);
        ++seen;
        if (record.missed_before && !c.json)
            std::cout << "... " << record.missed_before << " records dropped (tail too slow)\n";
        std::error_code envelope_ec;
        const auto e = slotbus::parse_envelope(record.data, envelope_ec);
        if (c.json) {
            json::object line;
            if (!envelope_ec)
                line = json::parse(record.data).as_object();
            else
                line["raw"] = record.data;
            if (record.missed_before)
                line["slotbus_missed_before"] = record.missed_before;
            std::cout << json::serialize(line) << std::endl;
        } else if (!envelope_ec) {
            std::cout << e.time << "  " << e.subject << "  " << e.type << "  " << e.source << "  "
                      << json::serialize(e.data) << std::endl;
        } else {
            std::cout << "(" << record.data.size() << " bytes, not an envelope) "
                      << json::serialize(json::string(record.data)) << std::endl;
        }
    }
    return ok;
}

std::string exit_text(const json::value& last)
{
    if (last.is_null())
        return "-";
    if (const auto* signal = last.as_object().if_contains("signal"))
        return "signal " + str(*signal);
    return "status " + str(last.at("code"));
}

int cmd_plugins(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::variables_map vm;
    if (!parse("plugins", "[--json]",
               "The plugins the host supervises: state, pid, restarts, last exit.", own, {}, c,
               argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask(bus, "plugins");
    if (c.json) {
        std::cout << json::serialize(answer) << '\n';
        return ok;
    }
    const auto& plugins = answer.at("plugins").as_array();
    if (answer.at("plugins_dir").is_null()) {
        std::cout << "the host runs no plugins (started without --plugins-dir)\n";
        return ok;
    }
    std::vector<std::vector<std::string>> rows{
        {"PLUGIN", "STATE", "PID", "RESTARTS", "LAST EXIT", "UPTIME"}};
    for (const auto& v : plugins) {
        const auto& p = v.as_object();
        const auto pid = p.at("pid").to_number<std::int64_t>();
        std::string uptime = "-";
        if (const auto* up = p.if_contains("uptime_ms"))
            uptime = std::to_string(up->to_number<std::int64_t>() / 1000) + " s";
        rows.push_back({str(p.at("name")), str(p.at("state")), pid ? std::to_string(pid) : "-",
                        str(p.at("restarts")), exit_text(p.at("last_exit")), uptime});
    }
    print_table(rows);
    return ok;
}

int cmd_stats(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::variables_map vm;
    if (!parse("stats", "[--json]",
               "The host's totals and the traffic of its 100 busiest slots: records and\n"
               "bytes in and out, drops, depth.",
               own, {}, c, argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask(bus, "stats");
    if (c.json) {
        std::cout << json::serialize(answer) << '\n';
        return ok;
    }
    const auto& s = answer.as_object();
    std::cout << "host pid " << str(s.at("pid")) << ", up "
              << s.at("uptime_ms").to_number<std::int64_t>() / 1000 << " s, "
              << str(s.at("connections")) << " connections, " << str(s.at("slot_count"))
              << " slots, " << str(s.at("plugins_running")) << " plugins running\n"
              << "writes " << str(s.at("writes")) << " (" << str(s.at("write_errors"))
              << " failed), deliveries " << str(s.at("deliveries")) << ", queued "
              << str(s.at("depth")) << " ("
              << bytes_text(s.at("queued_bytes").to_number<std::uint64_t>()) << "), rss "
              << bytes_text(s.at("rss_bytes").to_number<std::uint64_t>()) << ", cpu "
              << str(s.at("cpu_ms")) << " ms\n\n";
    std::vector<std::vector<std::string>> rows{
        {"SLOT", "IN", "OUT", "BYTES IN", "BYTES OUT", "DROPPED", "DEPTH"}};
    for (const auto& v : s.at("slots").as_array()) {
        const auto& t = v.as_object();
        rows.push_back({str(t.at("name")), str(t.at("records_in")), str(t.at("records_out")),
                        str(t.at("bytes_in")), str(t.at("bytes_out")), str(t.at("dropped")),
                        str(t.at("depth"))});
    }
    print_table(rows);
    if (const auto& denied = s.at("denied").as_object(); !denied.empty()) {
        std::vector<std::vector<std::string>> refusals{{"DENIED TO", "RIGHT", "COUNT"}};
        for (const auto& [who, by_right] : denied)
            for (const auto& [r, n] : by_right.as_object())
                refusals.push_back({std::string(who), std::string(r), str(n)});
        std::cout << '\n';
        print_table(refusals);
    }
    return ok;
}

int cmd_policy(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::string verb, name, right_text;
    std::int64_t uid = -1;
    std::string plugin, peer_host, client, domain;
    own.add_options()("verb", po::value(&verb)->required(), "explain")(
        "name", po::value(&name), "a slot name or topic pattern (not for list and admin)")(
        "right", po::value(&right_text), "create, write, read, list or admin")(
        "uid", po::value(&uid), "the uid asked about (its groups as this machine has them)")(
        "plugin", po::value(&plugin), "the plugin asked about (its manifest's permissions)")(
        "host", po::value(&peer_host), "the peer host asked about (writes over a link)")(
        "client", po::value(&client), "the TLS client asked about (its name in --clients)")(
        "domain", po::value(&domain), "the domain whose broadcasts are asked about");
    po::positional_options_description positional;
    positional.add("verb", 1).add("name", 1).add("right", 1);
    po::variables_map vm;
    if (!parse("policy",
               "explain (--uid U | --plugin P | --host H | --client C | --domain D) [NAME] RIGHT "
               "[--json]",
               "Which rule of the host's policy decides whether a uid, a plugin, a peer host,\n"
               "a TLS client or a domain's broadcasts have RIGHT on NAME (a slot name, or a\n"
               "pattern for read), and what it decides.",
               own, positional, c, argv, vm))
        return ok;
    if (verb != "explain")
        throw usage_error("policy: the only verb is explain, not " + verb);
    if (right_text.empty() && (name == "list" || name == "admin"))
        std::swap(name, right_text); // `explain --uid U admin`: no name to ask about
    if (right_text.empty())
        throw usage_error("policy explain: which RIGHT? create, write, read, list or admin");
    if ((uid >= 0) + !plugin.empty() + !peer_host.empty() + !client.empty() + !domain.empty() != 1)
        throw usage_error(
            "policy explain: give one of --uid U, --plugin P, --host H, --client C, --domain D");
    json::object question{{"right", right_text}};
    if (!name.empty())
        question["name"] = name;
    if (uid >= 0)
        question["uid"] = uid;
    else if (!plugin.empty())
        question["plugin"] = plugin;
    else if (!peer_host.empty())
        question["host"] = peer_host;
    else if (!client.empty())
        question["client"] = client;
    else
        question["domain"] = domain;
    auto bus = connect(c);
    const auto answer = ask(bus, "explain", json::serialize(question));
    if (c.json) {
        std::cout << json::serialize(answer) << '\n';
        return ok;
    }
    const auto& a = answer.as_object();
    std::cout << str(a.at("identity")) << ' ' << (a.at("allowed").as_bool() ? "may" : "may not")
              << ' ' << str(a.at("right"));
    if (!a.at("name").is_null())
        std::cout << ' ' << str(a.at("name"));
    std::cout << ": " << str(a.at("by")) << '\n';
    return a.at("allowed").as_bool() ? ok : failed;
}

int cmd_hosts(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::variables_map vm;
    if (!parse("hosts", "[--json]",
               "This host's peers (--peers) and each link: state, address, the key it "
               "proved, round trip, records and bytes each way, credits, last error. With "
               "--broadcast, the domain's counters and the hosts heard from: domain, address, "
               "lease, records, losses, and the key each claims (verified only where a link "
               "proved it).",
               own, {}, c, argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask(bus, "hosts");
    if (c.json) {
        std::cout << json::serialize(answer) << '\n';
        return ok;
    }
    const auto& peers = answer.at("peers").as_array();
    if (answer.at("fingerprint").is_null())
        std::cout << "host " << str(answer.at("host"))
                  << " links with no other host (started without --peers)\n";
    else
        std::cout << "host " << str(answer.at("host")) << ", key " << str(answer.at("fingerprint"))
                  << '\n';
    if (!peers.empty()) {
        std::vector<std::vector<std::string>> rows{
            {"PEER", "STATE", "ADDRESS", "RTT", "OUT", "IN", "IN FLIGHT", "UNKNOWN", "LAST ERROR"}};
        for (const auto& v : peers) {
            const auto& p = v.as_object();
            const auto rtt = p.at("round_trip_us").to_number<std::int64_t>();
            rows.push_back(
                {str(p.at("host")), str(p.at("state")),
                 p.contains("connected_to") ? str(p.at("connected_to")) : str(p.at("address")),
                 rtt ? std::to_string(rtt) + " us" : "-",
                 str(p.at("records_out")) + " / " + str(p.at("bytes_out")) + " B",
                 str(p.at("records_in")) + " / " + str(p.at("bytes_in")) + " B",
                 str(p.at("in_flight")), str(p.at("unknown_outcome")), str(p.at("last_error"))});
        }
        print_table(rows);
    }
    const auto& b = answer.at("broadcast");
    if (b.is_null()) {
        std::cout << "no broadcasts (started without --broadcast): \\\\*\\ names reach this host "
                     "only\n";
        return ok;
    }
    const auto& o = b.as_object();
    std::cout << "broadcasts: domain " << str(o.at("domain")) << " on " << str(o.at("group"))
              << ", ttl " << str(o.at("ttl"))
              << (o.at("signed").as_bool() ? ", signed with the domain key"
                                           : ", not signed (anyone on the link may send)")
              << "\n  sent " << str(o.at("sent")) << ", received " << str(o.at("received"))
              << ", lost " << str(o.at("lost")) << ", duplicates " << str(o.at("duplicates"))
              << ", late " << str(o.at("late")) << "; dropped: " << str(o.at("malformed"))
              << " malformed, " << str(o.at("unsigned")) << " unsigned, "
              << str(o.at("bad_signature")) << " wrongly signed, " << str(o.at("stale"))
              << " stale, " << str(o.at("replayed")) << " replayed, " << str(o.at("other_domain"))
              << " for other domains, " << str(o.at("denied")) << " refused by the policy\n";
    // A beacon's key is a claim; a link that is up proved its peer's.
    auto key_of = [&](const json::object& h) {
        const auto claimed = str(h.at("claimed_fingerprint"));
        for (const auto& v : peers) {
            const auto& p = v.as_object();
            if (p.at("host").as_string() != slotbus::fold_case(str(h.at("host"))) ||
                p.at("state").as_string() != "up")
                continue;
            return claimed == str(p.at("fingerprint"))
                       ? "verified by its link"
                       : "claims " + claimed + ", but its link proved " + str(p.at("fingerprint"));
        }
        return claimed.empty() ? std::string("-") : "claimed " + claimed;
    };
    std::vector<std::vector<std::string>> rows{{"HOST", "DOMAIN", "ADDRESS", "BY", "LEASE",
                                                "RECORDS", "LOST", "DUPLICATES", "LATE", "KEY"}};
    for (const auto& v : o.at("hosts").as_array()) {
        const auto& h = v.as_object();
        rows.push_back(
            {str(h.at("host")), h.at("domain").is_null() ? "?" : str(h.at("domain")),
             str(h.at("address")), str(h.at("by")),
             std::to_string(h.at("lease_left_ms").to_number<std::int64_t>() / 1000) + " s",
             str(h.at("records")), str(h.at("lost")), str(h.at("duplicates")), str(h.at("late")),
             key_of(h)});
    }
    if (rows.size() == 1)
        std::cout << "no other host heard from yet\n";
    else
        print_table(rows);
    return ok;
}

int cmd_keygen(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::string dir, name, domain_key_file;
    own.add_options()(
        "dir", po::value(&dir),
        "where host.key (mode 0600) and host.pem go; an existing key is never overwritten")(
        "name", po::value(&name), "the name in the certificate (default: the hostname)")(
        "domain-key", po::value(&domain_key_file),
        "instead: write a new domain key (32 random bytes in hex, mode 0600) to this file, "
        "for every host of the domain's --broadcast-key");
    po::variables_map vm;
    if (!parse("keygen", "--dir DIR [--name NAME] | --domain-key FILE",
               "Makes this host's link key (Ed25519) and a self-signed certificate, and prints "
               "the fingerprint its peers pin in their --peers file; or a domain's broadcast key.",
               own, {}, c, argv, vm))
        return ok;
    if (dir.empty() == domain_key_file.empty()) {
        std::cerr << "slotbus keygen: give --dir DIR (a host key) or --domain-key FILE\n";
        return usage;
    }
    if (!domain_key_file.empty()) {
        std::string why;
        if (!slotbus::bus::domain_key::generate(domain_key_file, why)) {
            std::cerr << "slotbus keygen: " << why << '\n';
            return failed;
        }
        std::cout << "domain key written to " << domain_key_file
                  << " (copy it to each host of the domain, mode 0600)\n";
        return ok;
    }
    if (name.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        name = host;
    }
    std::string why;
    const auto fp = slotbus::bus::generate_host_key(dir, name, why);
    if (fp.empty()) {
        std::cerr << "slotbus keygen: " << why << '\n';
        return failed;
    }
    if (c.json)
        std::cout << json::serialize(json::object{{"fingerprint", fp}, {"dir", dir}}) << '\n';
    else
        std::cout << fp << '\n';
    return ok;
}

int cmd_stop(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::uint64_t wait_ms = 30000;
    own.add_options()("wait", po::value(&wait_ms)->default_value(wait_ms),
                      "milliseconds to wait for the host (and its plugins) to be gone");
    po::variables_map vm;
    if (!parse("stop", "[--wait MS]",
               "Stops the host gracefully: its plugins first, then the bus. Returns once it\n"
               "is gone.",
               own, {}, c, argv, vm))
        return ok;
    {
        auto bus = connect(c);
        std::error_code ec;
        slotbus::admin(bus, "stop", {}, ec); // the host may close before its answer arrives
        if (ec && ec != slotbus::error::broken_pipe) {
            std::cerr << "slotbus: stop: " << ec.message() << '\n';
            return failed;
        }
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (std::chrono::steady_clock::now() < until) {
        slotbus::connection probe(slotbus::connection_options{"slotbus-cli", 1, ""});
        std::error_code ec;
        probe.connect(c.address, ec);
        if (ec) {
            if (c.json)
                std::cout << R"({"stopped":true})" << '\n';
            else
                std::cout << "stopped the host on " << slotbus::socket_path_of(c.address) << '\n';
            return ok;
        }
        std::this_thread::sleep_for(50ms);
    }
    std::cerr << "slotbus: the host is still running after " << wait_ms << " ms\n";
    return failed;
}

const command commands[] = {
    {"ls", "[PATH]", "the tree of slots, queued counts, owners, subscriptions", cmd_ls},
    {"info", "NAME", "one slot in detail", cmd_info},
    {"send", "NAME [DATA|-]", "write records (DATA, or one per stdin line)", cmd_send},
    {"tail", "PATTERN", "print records as they arrive on matching topics", cmd_tail},
    {"plugins", "", "the supervised plugins: state, pid, restarts, last exit", cmd_plugins},
    {"stats", "", "per-slot records and bytes in/out, drops, depth; host totals", cmd_stats},
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
    for (const auto& c : commands)
        out << "  " << std::left << std::setw(8) << c.name << std::setw(16) << c.args << c.summary
            << '\n';
    out << "\n`slotbus COMMAND --help` describes each command.\n"
           "Exit codes: 0 ok, 1 the host refused (e.g. no such slot), 2 usage,\n"
           "3 tail ran out of time, 69 no host answers.\n";
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
            std::cerr << "slotbus " << e.what() << "\n(slotbus " << name << " --help)\n";
            return usage;
        } catch (const std::exception& e) {
            std::cerr << "slotbus " << name << ": " << e.what() << '\n';
            return failed;
        }
    }
    std::cerr << "slotbus: unknown command \"" << name << "\"\n\n";
    print_usage(std::cerr);
    return usage;
}
