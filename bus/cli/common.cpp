// What the CLI's commands share: options, the connection, answers, tables.
#include "cli.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cmath>
#include <iostream>
#include <sstream>

namespace slotbus::cli {

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

json::value ask(slotbus::connection& bus, std::string_view command, std::string_view argument)
{
    std::error_code ec;
    auto answer = slotbus::admin(bus, command, argument, ec);
    if (ec)
        std::exit(refused(command, ec));
    return answer;
}

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

std::string number_text(double d)
{
    char text[32];
    return {text, std::to_chars(text, text + sizeof text, d).ptr};
}

namespace {
void append_pretty(std::string& out, const json::value& v, std::size_t depth)
{
    const auto indent = [&](std::size_t d) { out.append("\n").append(2 * d, ' '); };
    if (const auto* o = v.if_object(); o && !o->empty()) {
        out += '{';
        bool first = true;
        for (const auto& [key, value] : *o) {
            out += first ? "" : ",";
            first = false;
            indent(depth + 1);
            slotbus::detail::append_json_string(out, key);
            out += ": ";
            append_pretty(out, value, depth + 1);
        }
        indent(depth);
        out += '}';
    } else if (const auto* a = v.if_array(); a && !a->empty()) {
        out += '[';
        for (std::size_t i = 0; i < a->size(); ++i) {
            out += i ? "," : "";
            indent(depth + 1);
            append_pretty(out, (*a)[i], depth + 1);
        }
        indent(depth);
        out += ']';
    } else {
        slotbus::detail::append_json(out, v);
    }
}
} // namespace

std::string pretty_json(const json::value& v)
{
    std::string out;
    append_pretty(out, v, 0);
    return out;
}

std::string counted(std::uint64_t n, std::string_view one, std::string_view many)
{
    return std::to_string(n) + ' ' + std::string(n == 1 ? one : many);
}

std::string duration_text(std::uint64_t ms)
{
    if (ms < 1000)
        return std::to_string(ms) + " ms";
    return std::to_string(ms / 1000) + '.' + std::to_string(ms % 1000 / 100) + " s";
}

std::string held_text(const json::value& slot)
{
    const auto writers = slot.at("held_writers").to_number<std::uint64_t>();
    if (!writers)
        return {};
    return counted(writers, "writer", "writers") + " held " +
           duration_text(slot.at("held_ms").to_number<std::uint64_t>());
}

std::string str(const json::value& v)
{
    if (v.is_string())
        return std::string(v.get_string());
    if (v.is_double())
        return number_text(v.get_double());
    return json_text(v);
}

} // namespace slotbus::cli
