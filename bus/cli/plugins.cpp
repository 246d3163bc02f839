// The commands about the host's plugins.
#include "cli.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>

#include "plugins/manifest.hpp"

namespace slotbus::cli {

namespace fs = std::filesystem;

std::string exit_text(const json::value& last)
{
    if (last.is_null())
        return "-";
    if (const auto* signal = last.as_object().if_contains("signal"))
        return "signal " + str(*signal);
    return "status " + str(last.at("code"));
}

namespace {

/// `plugins start|stop|restart NAME`: the host's answer is the state after it.
int control(common& c, const std::string& action, const std::string& name)
{
    auto bus = connect(c);
    std::error_code ec;
    const auto answer = slotbus::admin(
        bus, "plugin", json_text(json::object{{"name", name}, {"action", action}}), ec);
    if (ec == slotbus::error::file_not_found) {
        std::cerr << "slotbus: plugins " << action << ": no plugin " << name
                  << " (slotbus plugins lists them)\n";
        return failed;
    }
    if (ec)
        return refused("plugins " + action, ec);
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    const auto state = str(answer.at("state"));
    if (action == "stop")
        std::cout << "plugin " << name << " "
                  << (state == "stopping" ? "is stopping" : "is stopped")
                  << "; it stays stopped until `slotbus plugins start " << name << "`\n";
    else
        std::cout << "plugin " << name << " " << (action == "start" ? "started" : "restarted")
                  << " (" << state << ")\n";
    return ok;
}

void print_manifest_errors(const json::value& answer)
{
    const auto* errors = answer.as_object().if_contains("manifest_errors");
    if (!errors || errors->as_array().empty())
        return;
    const auto& list = errors->as_array();
    std::cout << '\n'
              << list.size() << (list.size() == 1 ? " manifest was" : " manifests were")
              << " not loaded:\n";
    for (const auto& v : list) {
        const auto& e = v.as_object();
        std::string where = str(e.at("file"));
        if (const auto* line = e.if_contains("line"))
            where += ":" + str(*line) + ":" + str(e.at("column"));
        std::cout << "  " << where << ": "
                  << (str(e.at("field")).empty() ? "" : "field \"" + str(e.at("field")) + "\" ")
                  << str(e.at("error")) << '\n';
    }
}

// ---- the shipped plugins, and enabling them ----------------------------------------------

/// Where the shipped plugins are: the installed libexec/slotbus/plugins.d, or
/// beside a build tree's CLI (build/dev/bus/slotbus → build/dev/plugins.d).
fs::path shipped_plugins_dir()
{
    const fs::path installed = SLOTBUS_SHIPPED_PLUGINS_DIR;
    std::error_code ec;
    if (fs::is_directory(installed, ec))
        return installed;
    const auto self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
        if (auto beside = self.parent_path().parent_path() / "plugins.d";
            fs::is_directory(beside, ec))
            return beside;
    return installed;
}

/// The user's plugins directory, the one the systemd unit runs:
/// $XDG_CONFIG_HOME/slotbus/plugins.d, else ~/.config/slotbus/plugins.d.
fs::path user_plugins_dir()
{
    if (const char* config = std::getenv("XDG_CONFIG_HOME"); config && *config == '/')
        return fs::path(config) / "slotbus" / "plugins.d";
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : "/") / ".config" / "slotbus" / "plugins.d";
}

/// The manifest in `dir` that names `name`, if one loads.
std::optional<bus::plugin_manifest> find_manifest(const fs::path& dir, const std::string& name)
{
    std::vector<bus::manifest_error> errors; // the others' business
    for (auto& m : bus::load_manifests(dir, errors))
        if (m.name == name)
            return std::move(m);
    return std::nullopt;
}

/// Tells a running host to read its manifests again; says so either way.
void reload_if_running(const common& c)
{
    slotbus::connection bus;
    std::error_code ec;
    bus.connect(c.address, ec);
    if (!ec)
        slotbus::admin(bus, "reload", {}, ec);
    std::cout << (ec ? "it runs when the host starts (or on `slotbus reload`)\n"
                     : "the host has read its plugins again\n");
}

int available(const common& c, const fs::path& from, const fs::path& to)
{
    std::vector<bus::manifest_error> errors, ignored;
    const auto shipped = bus::load_manifests(from, errors);
    const auto enabled = bus::load_manifests(to, ignored);
    auto is_enabled = [&](const bus::plugin_manifest& m) {
        return std::any_of(enabled.begin(), enabled.end(),
                           [&](const auto& e) { return e.name == m.name; });
    };
    if (c.json) {
        json::array list;
        for (const auto& m : shipped)
            list.push_back(json::object{{"name", m.name},
                                        {"description", m.description},
                                        {"manifest", m.file.string()},
                                        {"enabled", is_enabled(m)}});
        std::cout << json_text(json::object{{"from", from.string()},
                                            {"to", to.string()},
                                            {"plugins", std::move(list)}})
                  << '\n';
        return ok;
    }
    if (shipped.empty()) {
        std::cout << "no plugins in " << from.string() << '\n';
        return ok;
    }
    std::vector<std::vector<std::string>> rows{{"PLUGIN", "ENABLED", "DESCRIPTION"}};
    for (const auto& m : shipped)
        rows.push_back({m.name, is_enabled(m) ? "yes" : "no", m.description});
    print_table(rows);
    std::cout << "\nshipped in " << from.string() << "; enabled ones are linked into "
              << to.string() << '\n';
    return ok;
}

int enable(const common& c, const std::string& name, const fs::path& from, const fs::path& to)
{
    const auto m = find_manifest(from, name);
    if (!m) {
        std::cerr << "slotbus: plugins enable: no plugin " << name << " in " << from.string()
                  << " (slotbus plugins available lists them)\n";
        return failed;
    }
    if (find_manifest(to, name)) {
        std::cout << "plugin " << name << " is already enabled in " << to.string() << '\n';
        return ok;
    }
    std::error_code ec;
    fs::create_directories(to, ec);
    const auto link = to / m->file.filename();
    if (!ec)
        fs::create_symlink(fs::absolute(m->file), link, ec);
    if (ec) {
        std::cerr << "slotbus: plugins enable: cannot link " << link.string() << ": "
                  << ec.message() << '\n';
        return failed;
    }
    std::cout << "plugin " << name << " enabled: " << link.string() << " -> "
              << fs::absolute(m->file).string() << "; ";
    reload_if_running(c);
    return ok;
}

int disable(const common& c, const std::string& name, const fs::path& to)
{
    const auto m = find_manifest(to, name);
    if (!m) {
        std::cerr << "slotbus: plugins disable: no plugin " << name << " enabled in " << to.string()
                  << '\n';
        return failed;
    }
    std::error_code ec;
    if (!fs::is_symlink(m->file, ec)) {
        // Only what `enable` made is ours to remove: a manifest written by
        // hand stays, and the operator decides.
        std::cerr << "slotbus: plugins disable: " << m->file.string()
                  << " is a manifest of its own, not a link `enable` made; move it away to\n"
                     "disable the plugin\n";
        return failed;
    }
    fs::remove(m->file, ec);
    if (ec) {
        std::cerr << "slotbus: plugins disable: cannot remove " << m->file.string() << ": "
                  << ec.message() << '\n';
        return failed;
    }
    std::cout << "plugin " << name << " disabled; ";
    reload_if_running(c);
    return ok;
}

} // namespace

int cmd_plugins(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::string verb, name, from = shipped_plugins_dir().string(), to = user_plugins_dir().string();
    own.add_options()("verb", po::value(&verb),
                      "start, stop, restart, available, enable or disable (none: the list)")(
        "name", po::value(&name), "the plugin, as the list names it")(
        "from", po::value(&from)->default_value(from), "enable, available: the shipped plugins")(
        "to", po::value(&to)->default_value(to),
        "enable, disable, available: the plugins directory the host runs");
    po::positional_options_description positional;
    positional.add("verb", 1).add("name", 1);
    po::variables_map vm;
    if (!parse("plugins", "[start|stop|restart|enable|disable NAME | available] [--json]",
               "The plugins the host supervises: state, pid, restarts, last exit, and the\n"
               "manifests it could not load. `start` runs a stopped or failed plugin now;\n"
               "`stop` stops one and keeps it stopped (no restart, no reload starts it)\n"
               "until it is started again; `restart` stops and starts it.\n"
               "`available` lists the plugins shipped with slotbus; `enable` links one's\n"
               "manifest into your plugins directory (the one the systemd unit runs) and\n"
               "has a running host read it; `disable` removes that link.",
               own, positional, c, argv, vm))
        return ok;
    if (verb == "available")
        return available(c, from, to);
    if (!verb.empty()) {
        if (verb != "start" && verb != "stop" && verb != "restart" && verb != "enable" &&
            verb != "disable")
            throw usage_error("plugins: " + verb +
                              " is not start, stop, restart, available, enable or disable");
        if (name.empty())
            throw usage_error("plugins " + verb + ": which plugin? (" +
                              (verb == "enable" ? "slotbus plugins available" : "slotbus plugins") +
                              " lists them)");
        if (verb == "enable")
            return enable(c, name, from, to);
        if (verb == "disable")
            return disable(c, name, to);
        return control(c, verb, name);
    }
    auto bus = connect(c);
    const auto answer = ask(bus, "plugins");
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    const auto& plugins = answer.at("plugins").as_array();
    if (answer.at("plugins_dir").is_null()) {
        std::cout << "the host runs no plugins (started without --plugins-dir)\n";
        return ok;
    }
    if (plugins.empty())
        std::cout << "no plugins in " << str(answer.at("plugins_dir")) << '\n';
    else {
        std::vector<std::vector<std::string>> rows{
            {"PLUGIN", "STATE", "PID", "RESTARTS", "LAST EXIT", "UPTIME"}};
        for (const auto& v : plugins) {
            const auto& p = v.as_object();
            const auto pid = p.at("pid").to_number<std::int64_t>();
            std::string uptime = "-";
            if (const auto* up = p.if_contains("uptime_ms"))
                uptime = std::to_string(up->to_number<std::int64_t>() / 1000) + " s";
            auto state = str(p.at("state"));
            if (const auto* held = p.if_contains("held"); held && held->as_bool())
                state += " (by the operator)";
            rows.push_back({str(p.at("name")), state, pid ? std::to_string(pid) : "-",
                            str(p.at("restarts")), exit_text(p.at("last_exit")), uptime});
        }
        print_table(rows);
    }
    print_manifest_errors(answer);
    return ok;
}

int cmd_logs(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::string name;
    std::int64_t lines = 50;
    bool follow = false;
    own.add_options()("name", po::value(&name)->required(),
                      "the plugin")("lines,n", po::value(&lines)->default_value(lines),
                                    "how many of the last lines (the host keeps 200 per plugin)")(
        "follow,f", po::bool_switch(&follow), "keep printing lines as they come, until ^C");
    po::positional_options_description positional;
    positional.add("name", 1);
    po::variables_map vm;
    if (!parse("logs", "NAME [--lines N] [--follow] [--json]",
               "A plugin's last lines of output, and the host's own lines about it (started,\n"
               "exited, restarted), each with the time the host read it.",
               own, positional, c, argv, vm))
        return ok;
    auto bus = connect(c);
    // Lines are told apart by (time, text): a line already printed is not
    // printed again when a later look still has it.
    std::int64_t last_at = -1;
    std::vector<std::string> printed_at_last; // the lines printed with time last_at
    for (bool first = true;; first = false) {
        std::error_code ec;
        const auto answer = slotbus::admin(
            bus, "logs", json_text(json::object{{"name", name}, {"lines", first ? lines : 200}}),
            ec);
        if (ec == slotbus::error::file_not_found) {
            std::cerr << "slotbus: logs: no plugin " << name << " (slotbus plugins lists them)\n";
            return failed;
        }
        if (ec)
            return refused("logs", ec);
        for (const auto& v : answer.at("lines").as_array()) {
            const auto at = v.at("at_ms").to_number<std::int64_t>();
            const auto line = str(v.at("line"));
            if (at < last_at)
                continue;
            if (at == last_at) {
                if (std::find(printed_at_last.begin(), printed_at_last.end(), line) !=
                    printed_at_last.end())
                    continue;
            } else {
                last_at = at;
                printed_at_last.clear();
            }
            printed_at_last.push_back(line);
            if (c.json) {
                std::cout << json_text(v) << std::endl;
                continue;
            }
            const auto seconds = static_cast<std::time_t>(at / 1000);
            std::tm local{};
            ::localtime_r(&seconds, &local);
            char stamp[32];
            std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
            std::cout << stamp << '.' << std::setw(3) << std::setfill('0') << at % 1000
                      << std::setfill(' ') << "  " << line << std::endl;
        }
        if (!follow)
            return ok;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
}

int cmd_reload(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::variables_map vm;
    if (!parse("reload", "[--json]",
               "What SIGHUP does: the host reads its policy, its clients, its log file and\n"
               "its plugin manifests again, and says which manifests it could not load.",
               own, {}, c, argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask(bus, "reload");
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    std::cout << "reloaded\n";
    print_manifest_errors(answer);
    return ok;
}

} // namespace slotbus::cli
