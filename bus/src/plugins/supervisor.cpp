#include "supervisor.hpp"

#include "slotbus/error.hpp"
#include "slotbus/slot_name.hpp"

#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>

#include "core/random_token.hpp"
#include "service/log.hpp"
// Boost 1.81 leaves this definition out of the header-only build.
#include <boost/process/v2/impl/environment.ipp>

#include <array>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fcntl.h>
#include <linux/close_range.h>
#include <optional>
#include <set>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace slotbus::bus {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
namespace json = boost::json;
using clock = std::chrono::steady_clock;

namespace {

// Runs in the child between fork and exec.
struct plugin_launch_setup {
    pid_t host = ::getpid();

    bp::error_code on_exec_setup(bp::posix::default_launcher&, const bp::filesystem::path&,
                                 const char* const*)
    {
        // A session of its own, so a group of its own: signals reach the
        // plugin's children too, and no process outside the session can
        // join the group (its token is good for the group's processes).
        ::setsid();
        ::prctl(PR_SET_PDEATHSIG, SIGKILL); // no orphans even if the host is killed
        if (::getppid() != host)            // the host died before prctl took effect
            ::_exit(127);
        std::signal(SIGPIPE, SIG_DFL); // the host ignores it; an ignored signal is inherited
        // No descriptor of the host's (client sockets, files) leaks into the
        // plugin: all close at exec, whether or not they were opened O_CLOEXEC.
        ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
        return {};
    }
};

constexpr std::size_t max_line = 8192; // longer output lines are logged in pieces

} // namespace

enum class plugin_state { running, stopping, backoff, stopped, failed };

static std::string_view to_string(plugin_state s)
{
    switch (s) {
    case plugin_state::running:
        return "running";
    case plugin_state::stopping:
        return "stopping";
    case plugin_state::backoff:
        return "backoff";
    case plugin_state::stopped:
        return "stopped";
    case plugin_state::failed:
        return "failed";
    }
    return "?";
}

struct supervisor::plugin {
    explicit plugin(asio::io_context& io, plugin_manifest m) : manifest(std::move(m)), timer(io) {}

    plugin_manifest manifest;
    std::optional<plugin_manifest> next; // a changed manifest, started once this run ends
    bool removed = false;                // its manifest is gone: erase when it has stopped
    bool held = false;                   // stopped by the operator: no restart, no reload starts it
    plugin_state state = plugin_state::stopped;
    std::optional<bp::process> process;
    std::unique_ptr<asio::readable_pipe> output;
    std::array<char, 4096> buffer{};
    std::string partial;
    asio::steady_timer timer; // the restart back-off, or the SIGKILL deadline
    std::string token;
    int pid = 0;
    std::uint64_t run = 0; // bumped per spawn: handlers of an older run stand down
    unsigned restarts = 0;
    unsigned failures_in_row = 0;
    std::optional<int> last_code, last_signal;
    clock::time_point started{};
    /// The last kept_log_lines of its output and of what the host said of it.
    std::deque<std::pair<std::int64_t, std::string>> log_tail; // (unix ms, line)

    void remember(std::string_view line)
    {
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch());
        log_tail.emplace_back(now.count(), to_valid_utf8(line));
        if (log_tail.size() > kept_log_lines)
            log_tail.pop_front();
    }
    /// The newest `lines` lines, each cut to `line_bytes`, as many as fit
    /// `budget` bytes of JSON (an answer must fit a frame however chatty
    /// the plugin), oldest first.
    [[nodiscard]] json::array tail(std::size_t lines, std::size_t budget,
                                   std::size_t line_bytes) const
    {
        std::vector<json::object> newest_first;
        std::size_t used = 0;
        for (auto i = log_tail.size(); i-- > 0 && newest_first.size() < lines;) {
            std::string_view line = log_tail[i].second;
            if (line.size() > line_bytes) { // on a character's first byte
                line = line.substr(0, line_bytes);
                while (!line.empty() && (static_cast<unsigned char>(line.back()) & 0xc0) == 0x80)
                    line.remove_suffix(1);
                if (!line.empty() && static_cast<unsigned char>(line.back()) >= 0xc0)
                    line.remove_suffix(1);
            }
            json::object o{{"at_ms", log_tail[i].first}, {"line", line}};
            used += json::serialize(o).size() + 1;
            if (used > budget)
                break;
            newest_first.push_back(std::move(o));
        }
        return json::array(std::make_move_iterator(newest_first.rbegin()),
                           std::make_move_iterator(newest_first.rend()));
    }
};

supervisor::supervisor(asio::io_context& io, core& routing, supervisor_options options)
    : io_(io), core_(routing), options_(std::move(options)), child_exits_(io, SIGCHLD)
{
    // A plugin's orphaned descendants come to the host instead of init, so the
    // host can reap them and knows when the last of a plugin's group is gone.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    reap_orphans_on_sigchld();
}

void supervisor::reap_orphans_on_sigchld()
{
    child_exits_.async_wait([this](const boost::system::error_code& ec, int) {
        if (ec)
            return;
        reap_orphans();
        reap_orphans_on_sigchld();
    });
}

void supervisor::reap_orphans()
{
    // Orphans that left their plugin's group (setsid) still come to the host;
    // reap them as they exit. A plugin's own main process is left to its
    // watcher, which calls this again once it has reaped it.
    siginfo_t info{};
    while (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) {
        const pid_t pid = info.si_pid;
        for (const auto& [name, p] : plugins_)
            if (p->pid == pid)
                return;
        ::waitpid(pid, nullptr, 0);
        info = {};
    }
}

supervisor::~supervisor()
{
    // Normally stop_all ran first; this is the last line against orphans.
    for (auto& [name, p] : plugins_)
        if (p->pid > 0 && p->state != plugin_state::stopped && p->state != plugin_state::failed)
            ::kill(-p->pid, SIGKILL);
}

void supervisor::reload()
{
    if (shutting_down_)
        return;
    std::vector<manifest_error> errors;
    std::vector<plugin_manifest> found;
    for (const auto& dir : options_.plugins_dirs) {
        auto in_dir = load_manifests(dir, errors);
        if (!errors.empty() && errors.back().file == dir) {
            // A directory is unreadable: change nothing rather than stop its plugins.
            warn("plugins directory ", dir.string(), ": ", errors.back().what,
                 "; the plugins stay as they are");
            return;
        }
        std::move(in_dir.begin(), in_dir.end(), std::back_inserter(found));
    }
    // One manifest per name: the running plugin's own keeps it, else the first.
    std::vector<plugin_manifest> manifests;
    std::map<std::string, std::size_t> by_name; // index in manifests
    for (auto& m : found) {
        auto [it, first] = by_name.try_emplace(m.name, manifests.size());
        if (first) {
            manifests.push_back(std::move(m));
            continue;
        }
        auto& kept = manifests[it->second];
        const auto running = plugins_.find(m.name);
        if (running != plugins_.end() && running->second->manifest.file == m.file)
            std::swap(kept, m); // the newcomer is the earlier file; it is refused
        errors.push_back({m.file, "name",
                          "\"" + m.name + "\" is already the name of the plugin of " +
                              kept.file.string() + "; this manifest is refused"});
    }
    std::set<std::filesystem::path> broken_files;
    for (const auto& e : errors) {
        broken_files.insert(e.file);
        std::string where = e.file.string();
        if (e.line)
            where += ":" + std::to_string(e.line) + ":" + std::to_string(e.column);
        if (e.field.empty())
            warn("plugin manifest ", where, ": ", e.what, "; skipped");
        else
            warn("plugin manifest ", where, ": field \"", e.field, "\" ", e.what, "; skipped");
    }
    manifest_errors_ = errors;
    std::set<std::string> wanted;
    for (auto& m : manifests) {
        wanted.insert(m.name);
        auto it = plugins_.find(m.name);
        if (it == plugins_.end()) {
            auto p = std::make_shared<plugin>(io_, std::move(m));
            plugins_.emplace(p->manifest.name, p);
            spawn(p);
            continue;
        }
        const plugin_ptr& p = it->second;
        if (p->manifest.fingerprint == m.fingerprint && !p->removed)
            continue;
        p->removed = false;
        if (p->held) { // stays stopped until the operator starts it, with this manifest
            p->manifest = std::move(m);
            continue;
        }
        if (p->state == plugin_state::running || p->state == plugin_state::stopping) {
            log("plugin ", m.name, ": manifest changed; restarting it");
            p->next = std::move(m);
            stop(p);
        } else {
            p->timer.cancel();
            p->manifest = std::move(m);
            p->failures_in_row = 0;
            spawn(p);
        }
    }
    for (auto& [name, p] : plugins_) {
        if (wanted.count(name))
            continue;
        // Its file is broken now, or gives its name to another's plugin:
        // it runs on as it was.
        if (broken_files.count(p->manifest.file)) {
            warn("plugin ", name, ": keeps running under its previous manifest");
            continue;
        }
        if (!p->removed)
            log("plugin ", name, ": manifest removed; stopping it");
        p->removed = true;
        p->next.reset();
        stop(p);
    }
    std::erase_if(plugins_, [](const auto& entry) {
        const auto& p = entry.second;
        return p->removed && p->state != plugin_state::running &&
               p->state != plugin_state::stopping;
    });
}

void supervisor::spawn(const plugin_ptr& p)
{
    const auto& m = p->manifest;
    p->token = random_token();
    core_.add_plugin_token(p->token, m.name, m.permissions);

    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
        env.emplace_back(*e);
    auto set = [&](const std::string& key, const std::string& value) {
        std::erase_if(env, [&](const std::string& v) { return v.starts_with(key + '='); });
        env.push_back(key + '=' + value);
    };
    for (const auto& [key, value] : m.env)
        set(key, value);
    set("SLOTBUS_ADDRESS", options_.bus_address);
    set("SLOTBUS_PLUGIN", m.name);
    set("SLOTBUS_TOKEN", p->token);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        log_error("plugin ", m.name, ": cannot make its output pipe: ", std::strerror(errno));
        on_exit(p, -1);
        return;
    }
    ++p->run;
    try {
        p->process.emplace(io_, m.executable.string(), m.args,
                           bp::process_stdio{nullptr, fds[1], fds[1]}, bp::process_environment(env),
                           bp::process_start_dir(m.cwd.string()), plugin_launch_setup{});
    } catch (const std::exception& e) {
        ::close(fds[0]);
        ::close(fds[1]);
        log_error("plugin ", m.name, ": cannot start ", m.executable.string(), ": ", e.what());
        p->process.reset();
        p->pid = 0;
        p->state = plugin_state::running; // so on_exit applies the restart policy
        on_exit(p, W_EXITCODE(127, 0));
        return;
    }
    ::close(fds[1]);
    p->pid = p->process->id();
    core_.bind_plugin_token(p->token, static_cast<std::uint32_t>(p->pid));
    p->state = plugin_state::running;
    p->started = clock::now();
    p->partial.clear();
    p->output = std::make_unique<asio::readable_pipe>(io_, fds[0]);
    log("plugin ", m.name, ": started ", m.executable.string(), " (pid ", p->pid, ")");
    p->remember("slotbusd: started (pid " + std::to_string(p->pid) + ")");
    read_output(p);
    watch(p);
}

void supervisor::read_output(const plugin_ptr& p)
{
    p->output->async_read_some(asio::buffer(p->buffer), [this, p, run = p->run](
                                                            const boost::system::error_code& ec,
                                                            std::size_t n) {
        if (run != p->run)
            return; // the pipe of an earlier run
        p->partial.append(p->buffer.data(), n);
        std::size_t at;
        while ((at = p->partial.find('\n')) != std::string::npos || p->partial.size() >= max_line) {
            const auto cut = at == std::string::npos ? max_line : at;
            const auto line = std::string_view(p->partial).substr(0, cut);
            log("[", p->manifest.name, "] ", line);
            p->remember(line);
            p->partial.erase(0, at == std::string::npos ? cut : cut + 1);
        }
        if (ec) {
            if (!p->partial.empty()) {
                log("[", p->manifest.name, "] ", p->partial);
                p->remember(p->partial);
            }
            p->partial.clear();
            return;
        }
        read_output(p);
    });
}

void supervisor::watch(const plugin_ptr& p)
{
    p->process->async_wait([this, p, run = p->run](const boost::system::error_code& ec, int) {
        if (run != p->run)
            return;
        int status = p->process->native_exit_code();
        if (ec) { // not waitable through the pidfd: ask the kernel directly
            if (::waitpid(p->pid, &status, 0) <= 0)
                status = W_EXITCODE(127, 0);
        }
        on_exit(p, status);
    });
}

void supervisor::on_exit(const plugin_ptr& p, int status)
{
    if (p->pid > 0) {
        ::kill(-p->pid, SIGKILL); // whatever the plugin left of its process group
        reap_group(p->manifest.name, p->pid, clock::now() + group_reap_limit);
        reap_orphans();
    }
    core_.revoke_plugin_token(p->token);
    p->timer.cancel();
    const auto& name = p->manifest.name;
    const bool signalled = status >= 0 && WIFSIGNALED(status);
    p->last_code.reset();
    p->last_signal.reset();
    if (signalled)
        p->last_signal = WTERMSIG(status);
    else
        p->last_code = status >= 0 ? WEXITSTATUS(status) : -1;
    const bool failure = signalled || p->last_code != 0;
    if (p->pid > 0) {
        const auto how = signalled ? "killed by signal " + std::to_string(*p->last_signal)
                                   : "exited with status " + std::to_string(*p->last_code);
        log_at(failure && p->state != plugin_state::stopping ? level::warning : level::info,
               "plugin ", name, ": pid ", p->pid, " ", how);
        p->remember("slotbusd: pid " + std::to_string(p->pid) + " " + how);
    }
    const bool was_stopping = p->state == plugin_state::stopping;
    p->pid = 0;
    p->process.reset();

    if (was_stopping || shutting_down_) {
        p->state = plugin_state::stopped;
        if (p->next && !shutting_down_) {
            p->manifest = std::move(*p->next);
            p->next.reset();
            p->failures_in_row = 0;
            spawn(p);
        } else if (p->removed) {
            plugins_.erase(name);
        }
        check_all_stopped();
        return;
    }
    if (clock::now() - p->started >= options_.stable_after)
        p->failures_in_row = 0;
    const auto policy = p->manifest.restart;
    const bool restart =
        policy == restart_policy::always || (policy == restart_policy::on_failure && failure);
    if (!restart || p->held) {
        p->state = plugin_state::stopped;
        return;
    }
    if (p->failures_in_row >= p->manifest.max_restarts) {
        p->state = plugin_state::failed;
        log_error("plugin ", name, ": gave up after ", p->failures_in_row,
                  " restarts in a row (max_restarts)");
        return;
    }
    schedule_restart(p);
}

void supervisor::schedule_restart(const plugin_ptr& p)
{
    // 1st restart after backoff_ms, then doubling up to backoff_max_ms.
    auto delay = p->manifest.backoff_initial;
    for (unsigned i = 0; i < p->failures_in_row && delay < p->manifest.backoff_max; ++i)
        delay *= 2;
    delay = std::min(delay, p->manifest.backoff_max);
    ++p->failures_in_row;
    p->state = plugin_state::backoff;
    warn("plugin ", p->manifest.name, ": restarting in ", delay.count(), " ms (restart ",
         p->failures_in_row, " of at most ", p->manifest.max_restarts, ")");
    p->timer.expires_after(delay);
    p->timer.async_wait([this, p](const boost::system::error_code& ec) {
        if (ec || p->state != plugin_state::backoff || shutting_down_)
            return;
        ++p->restarts;
        spawn(p);
    });
}

void supervisor::stop(const plugin_ptr& p)
{
    if (p->state == plugin_state::backoff) {
        p->timer.cancel();
        p->state = plugin_state::stopped;
    }
    if (p->state != plugin_state::running) {
        if (p->state == plugin_state::stopped || p->state == plugin_state::failed) {
            if (p->next && !shutting_down_) {
                p->manifest = std::move(*p->next);
                p->next.reset();
                spawn(p);
            }
        }
        return;
    }
    p->state = plugin_state::stopping;
    ::kill(-p->pid, SIGTERM);
    p->timer.expires_after(p->manifest.stop_timeout);
    p->timer.async_wait([p, run = p->run](const boost::system::error_code& ec) {
        if (ec || run != p->run || p->state != plugin_state::stopping || p->pid <= 0)
            return;
        warn("plugin ", p->manifest.name, ": still running ", p->manifest.stop_timeout.count(),
             " ms after SIGTERM; sending SIGKILL");
        ::kill(-p->pid, SIGKILL);
    });
}

std::string supervisor::control(std::string_view name, std::string_view action, std::error_code& ec)
{
    auto it = plugins_.find(std::string(name));
    if (it == plugins_.end() || it->second->removed) {
        ec = error::file_not_found;
        return {};
    }
    if (shutting_down_) {
        ec = error::broken_pipe; // the host is stopping: nothing starts now
        return {};
    }
    const plugin_ptr& p = it->second;
    const bool alive = p->state == plugin_state::running || p->state == plugin_state::stopping;
    if (action == "stop") {
        p->held = true;
        p->next.reset();
        if (p->state == plugin_state::failed)
            p->state = plugin_state::stopped;
        stop(p);
        log("plugin ", p->manifest.name, ": stopped by the operator");
        p->remember("slotbusd: stopped by the operator");
    } else if (action == "start" || action == "restart") {
        p->held = false;
        p->failures_in_row = 0;
        log("plugin ", p->manifest.name, ": ", action, " by the operator");
        p->remember("slotbusd: " + std::string(action) + " by the operator");
        if (action == "restart" && alive) {
            p->next = p->manifest; // started again once this run has ended
            stop(p);
        } else if (p->state == plugin_state::stopping) {
            p->next = p->manifest;
        } else if (!alive) {
            p->timer.cancel(); // a back-off waiting
            spawn(p);
        }
    } else {
        ec = error::invalid_parameter;
        return {};
    }
    return std::string(to_string(p->state));
}

void supervisor::stop_all(std::function<void()> done)
{
    shutting_down_ = true;
    on_all_stopped_ = std::move(done);
    for (auto& [name, p] : plugins_)
        stop(p);
    check_all_stopped();
}

void supervisor::reap_group(const std::string& name, int group, clock::time_point give_up)
{
    // The group's leader is reaped already; what is left of the group are the
    // host's children now (it is their subreaper), dying of the SIGKILL.
    pid_t reaped = 0;
    while ((reaped = ::waitpid(-group, nullptr, WNOHANG)) > 0) {
    }
    const bool gone = reaped < 0; // ECHILD: no child of that group is left
    const bool given_up = !gone && clock::now() >= give_up;
    if (given_up)
        warn("plugin ", name, ": process group ", group, " still has members ",
             group_reap_limit.count(), " ms after SIGKILL; no longer waiting for them");
    if (gone || given_up) {
        lingering_groups_.erase(group);
        check_all_stopped();
        return;
    }
    lingering_groups_.insert(group);
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(2));
    timer->async_wait([this, timer, name, group, give_up](const boost::system::error_code&) {
        reap_group(name, group, give_up);
    });
}

void supervisor::check_all_stopped()
{
    if (!shutting_down_ || !on_all_stopped_ || !lingering_groups_.empty())
        return;
    for (const auto& [name, p] : plugins_)
        if (p->state == plugin_state::running || p->state == plugin_state::stopping)
            return;
    auto done = std::move(on_all_stopped_);
    on_all_stopped_ = nullptr;
    done();
}

std::size_t supervisor::running() const
{
    return static_cast<std::size_t>(
        std::count_if(plugins_.begin(), plugins_.end(),
                      [](const auto& e) { return e.second->state == plugin_state::running; }));
}

std::shared_ptr<const grant_list> supervisor::permissions_of(std::string_view name) const
{
    auto it = plugins_.find(std::string(name));
    return it == plugins_.end() ? nullptr : it->second->manifest.permissions;
}

json::object supervisor::logs(std::string_view name, std::size_t lines, std::error_code& ec) const
{
    auto it = plugins_.find(std::string(name));
    if (it == plugins_.end()) {
        ec = error::file_not_found;
        return {};
    }
    return {{"name", it->first},
            {"lines", it->second->tail(lines, core_.limits().max_frame_size() / 2, max_line)}};
}

json::object supervisor::describe(std::size_t log_lines) const
{
    json::array list;
    const auto now = clock::now();
    for (const auto& [name, p] : plugins_) {
        json::object o{{"name", name},
                       {"state", to_string(p->state)},
                       {"held", p->held},
                       {"pid", p->pid},
                       {"restarts", p->restarts},
                       {"failures_in_row", p->failures_in_row},
                       {"restart", to_string(p->manifest.restart)},
                       {"max_restarts", p->manifest.max_restarts},
                       {"executable", p->manifest.executable.string()},
                       {"manifest", p->manifest.file.string()}};
        if (p->state == plugin_state::running)
            o["uptime_ms"] =
                std::chrono::duration_cast<std::chrono::milliseconds>(now - p->started).count();
        if (p->last_signal)
            o["last_exit"] = {{"signal", *p->last_signal}};
        else if (p->last_code)
            o["last_exit"] = {{"code", *p->last_code}};
        else
            o["last_exit"] = nullptr;
        if (log_lines) // a share of a quarter frame each, lines cut to 1 KiB
            o["log"] = p->tail(log_lines,
                               core_.limits().max_frame_size() / 4 /
                                   std::max<std::size_t>(1, plugins_.size()),
                               1024);
        list.push_back(std::move(o));
    }
    json::array dirs, errors;
    for (const auto& d : options_.plugins_dirs)
        dirs.push_back(json::string(d.string()));
    for (const auto& e : manifest_errors_) {
        json::object o{{"file", e.file.string()}, {"field", e.field}, {"error", e.what}};
        if (e.line) {
            o["line"] = e.line;
            o["column"] = e.column;
        }
        errors.push_back(std::move(o));
    }
    return {{"plugins_dir",
             options_.plugins_dirs.empty() ? json::value(nullptr) : json::value(dirs.front())},
            {"plugins_dirs", std::move(dirs)},
            {"plugins", std::move(list)},
            {"manifest_errors", std::move(errors)}};
}

} // namespace slotbus::bus
