#include "manifest.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

namespace slotbus::bus {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string_view to_string(restart_policy p) noexcept
{
    switch (p) {
    case restart_policy::never:
        return "never";
    case restart_policy::on_failure:
        return "on-failure";
    case restart_policy::always:
        return "always";
    }
    return "?";
}

namespace {

bool valid_plugin_name(std::string_view name)
{
    if (name.empty() || name.size() > 64)
        return false;
    auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    return lower_or_digit(name.front()) && std::all_of(name.begin(), name.end(), [&](char c) {
               return lower_or_digit(c) || c == '-' || c == '_';
           });
}

bool is_executable(const fs::path& p)
{
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

std::optional<fs::path> resolve_executable(const fs::path& manifest_dir, const std::string& exe)
{
    const fs::path given(exe);
    if (given.is_absolute())
        return is_executable(given) ? std::optional(given) : std::nullopt;
    if (exe.find('/') != std::string::npos) {
        auto p = fs::absolute(manifest_dir / given).lexically_normal();
        return is_executable(p) ? std::optional(p) : std::nullopt;
    }
    if (auto beside = fs::absolute(manifest_dir / given); is_executable(beside))
        return beside.lexically_normal();
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && is_executable(fs::path(dir) / given))
            return fs::path(dir) / given;
    return std::nullopt;
}

// Reads one optional field; false (with error set) when it has the wrong type.
class field_reader {
public:
    field_reader(const json::object& o, manifest_error& e) : object_(o), error_(e) {}

    template <class F> bool get(std::string_view key, F&& take)
    {
        if (const auto* v = object_.if_contains(key)) {
            std::string why = take(*v);
            if (!why.empty()) {
                error_.field = std::string(key);
                error_.what = std::move(why);
                return false;
            }
        }
        return true;
    }

private:
    const json::object& object_;
    manifest_error& error_;
};

std::string take_string(const json::value& v, std::string& out)
{
    if (!v.is_string())
        return "must be a string";
    out = std::string(v.get_string());
    return {};
}

std::string take_millis(const json::value& v, std::chrono::milliseconds& out, long max_ms)
{
    if (!v.is_int64() && !v.is_uint64())
        return "must be a whole number of milliseconds";
    const auto ms = v.is_int64() ? v.get_int64() : static_cast<std::int64_t>(v.get_uint64());
    if (ms < 0 || ms > max_ms)
        return "must be between 0 and " + std::to_string(max_ms) + " ms";
    out = std::chrono::milliseconds(ms);
    return {};
}

} // namespace

std::optional<plugin_manifest> parse_manifest(const fs::path& file, std::string_view text,
                                              manifest_error& error)
{
    error = {file, {}, {}};
    boost::system::error_code ec;
    json::stream_parser parser;
    const auto parsed = parser.write_some(text.data(), text.size(), ec);
    if (!ec)
        parser.finish(ec);
    if (ec) {
        // Where: the parser took `parsed` characters before it stopped.
        const auto before = text.substr(0, std::min(parsed, text.size()));
        error.line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
        const auto line_start = before.rfind('\n');
        error.column =
            1 + before.size() - (line_start == std::string_view::npos ? 0 : line_start + 1);
        error.what = "not valid JSON: " + ec.message();
        return std::nullopt;
    }
    const json::value doc = parser.release();
    if (!doc.is_object()) {
        error.what = "must be a JSON object";
        return std::nullopt;
    }
    const auto& o = doc.as_object();
    static const std::set<std::string_view> known{"name",
                                                  "executable",
                                                  "args",
                                                  "env",
                                                  "cwd",
                                                  "restart",
                                                  "max_restarts",
                                                  "backoff_ms",
                                                  "backoff_max_ms",
                                                  "stop_timeout_ms",
                                                  "permissions",
                                                  "description"};
    for (const auto& [key, value] : o)
        if (!known.count(key)) {
            error.field = std::string(key);
            error.what = "unknown field (a typo?)";
            return std::nullopt;
        }

    plugin_manifest m;
    m.file = file;
    // A manifest linked into a plugins directory (`slotbus plugins enable`)
    // finds its executable beside the file it links to.
    std::error_code real_ec;
    auto real = fs::canonical(file, real_ec);
    const fs::path dir = (real_ec ? fs::absolute(file) : real).parent_path();
    m.cwd = dir;
    field_reader fields(o, error);
    std::string executable, cwd, restart = "on-failure";
    const bool ok = fields.get("name", [&](const json::value& v) {
        if (auto why = take_string(v, m.name); !why.empty())
            return why;
        return valid_plugin_name(m.name)
                   ? std::string()
                   : std::string("must be 1-64 of a-z 0-9 - _, starting with a "
                                 "letter or digit");
    }) && fields.get("executable", [&](const json::value& v) {
        return take_string(v, executable);
    }) && fields.get("args", [&](const json::value& v) -> std::string {
        const auto* a = v.if_array();
        if (!a)
            return "must be an array of strings";
        for (const auto& arg : *a) {
            if (!arg.is_string())
                return "must be an array of strings";
            m.args.emplace_back(arg.get_string());
        }
        return {};
    }) && fields.get("env", [&](const json::value& v) -> std::string {
        const auto* e = v.if_object();
        if (!e)
            return "must be an object of strings";
        for (const auto& [key, value] : *e) {
            if (!value.is_string() || key.empty() || key.find('=') != json::string_view::npos)
                return "must be an object of NAME: \"value\" strings";
            m.env[std::string(key)] = std::string(value.get_string());
        }
        return {};
    }) && fields.get("cwd", [&](const json::value& v) {
        return take_string(v, cwd);
    }) && fields.get("restart", [&](const json::value& v) -> std::string {
        if (auto why = take_string(v, restart); !why.empty())
            return why;
        if (restart == "never")
            m.restart = restart_policy::never;
        else if (restart == "on-failure")
            m.restart = restart_policy::on_failure;
        else if (restart == "always")
            m.restart = restart_policy::always;
        else
            return "must be \"never\", \"on-failure\" or \"always\"";
        return {};
    }) && fields.get("max_restarts", [&](const json::value& v) -> std::string {
        if (!v.is_int64() && !v.is_uint64())
            return "must be a whole number";
        const auto n = v.is_int64() ? v.get_int64() : 0;
        if (v.is_uint64() || n < 0 || n > 1000000)
            return "must be between 0 and 1000000";
        m.max_restarts = static_cast<unsigned>(n);
        return {};
    }) && fields.get("backoff_ms", [&](const json::value& v) {
        return take_millis(v, m.backoff_initial, 3600000);
    }) && fields.get("backoff_max_ms", [&](const json::value& v) {
        return take_millis(v, m.backoff_max, 3600000);
    }) && fields.get("stop_timeout_ms", [&](const json::value& v) {
        return take_millis(v, m.stop_timeout, 600000);
    }) && fields.get("permissions", [&](const json::value& v) -> std::string {
        const auto* list = v.if_array();
        if (!list)
            return "must be a list of {\"allow\": [RIGHT...], \"names\": [PATTERN...]}";
        grant_list grants;
        for (std::size_t i = 0; i < list->size(); ++i) {
            if (const auto* entry = (*list)[i].if_object())
                for (const auto& [key, field] : *entry)
                    if (key != "allow" && key != "names")
                        return "entry " + std::to_string(i + 1) + ": unknown field \"" +
                               std::string(key) + "\" (a typo?)";
            std::string why;
            grants.push_back(parse_grant((*list)[i], "allow", why));
            if (!why.empty())
                return "entry " + std::to_string(i + 1) + ": " + why;
        }
        m.permissions = std::make_shared<const grant_list>(std::move(grants));
        return {};
    }) && fields.get("description", [&](const json::value& v) {
        return take_string(v, m.description);
    });
    if (!ok)
        return std::nullopt;
    auto missing = [&](const char* field) {
        error.field = field;
        error.what = "is required";
        return std::nullopt;
    };
    if (m.name.empty())
        return missing("name");
    if (executable.empty())
        return missing("executable");
    auto resolved = resolve_executable(dir, executable);
    if (!resolved) {
        error.field = "executable";
        error.what = "\"" + executable +
                     "\" is not an executable file (looked beside the manifest and on $PATH)";
        return std::nullopt;
    }
    m.executable = *resolved;
    if (!cwd.empty()) {
        m.cwd = fs::absolute(dir / cwd).lexically_normal();
        std::error_code dir_ec;
        if (!fs::is_directory(m.cwd, dir_ec)) {
            error.field = "cwd";
            error.what = "\"" + cwd + "\" is not a directory";
            return std::nullopt;
        }
    }
    if (m.backoff_max < m.backoff_initial) {
        error.field = "backoff_max_ms";
        error.what = "must not be less than backoff_ms";
        return std::nullopt;
    }
    m.fingerprint = json::serialize(doc) + '\n' + m.executable.string();
    return m;
}

std::vector<plugin_manifest> load_manifests(const fs::path& dir,
                                            std::vector<manifest_error>& errors)
{
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.path().extension() == ".json")
            files.push_back(entry.path());
    if (ec) {
        errors.push_back({dir, {}, "cannot read the plugins directory: " + ec.message()});
        return {};
    }
    std::sort(files.begin(), files.end());
    std::vector<plugin_manifest> out;
    for (const auto& file : files) {
        std::ifstream in(file);
        if (!in) {
            errors.push_back({file, {}, "cannot be read"});
            continue;
        }
        std::stringstream text;
        text << in.rdbuf();
        manifest_error error;
        auto m = parse_manifest(file, text.str(), error);
        if (!m) {
            errors.push_back(std::move(error));
            continue;
        }
        out.push_back(std::move(*m));
    }
    return out;
}

} // namespace slotbus::bus
