// The plugin supervisor: launches the plugins of a manifests directory, keeps
// them running by their restart policy, and stops them without leaving any
// process behind.
#pragma once

#include "manifest.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/core.hpp"

namespace slotbus::bus {

struct supervisor_options {
    /// Read in this order: of two manifests naming one plugin, the one
    /// running keeps it, else the first found; the other is refused.
    std::vector<std::filesystem::path> plugins_dirs;
    std::string bus_address; ///< given to every plugin as $SLOTBUS_ADDRESS
    /// A run at least this long clears the failures in a row: the next crash
    /// restarts after the first back-off step again.
    std::chrono::milliseconds stable_after{10000};
};

/// Every plugin runs in a process group of its own (so its children are
/// signalled with it) and gets SIGKILL if the host dies; when its main
/// process exits, whatever is left of its group is killed, and reaped by the
/// host (a child subreaper) before it counts as stopped at shutdown.
/// Single-threaded: lives on the host's io_context thread.
class supervisor {
public:
    supervisor(boost::asio::io_context& io, core& routing, supervisor_options options);
    ~supervisor();
    supervisor(const supervisor&) = delete;
    supervisor& operator=(const supervisor&) = delete;

    /// Reads the manifests and brings the plugins in line with them: starts
    /// new ones, stops removed ones, restarts changed ones. An invalid manifest
    /// is logged (file and field) and skipped, and shown by describe(); a
    /// plugin already running from that file keeps running as it was.
    void reload();

    /// The operator's commands (`slotbus plugins start|stop|restart NAME`):
    /// "start" a stopped or failed plugin now, with its restarts in a row
    /// forgotten; "stop" it and keep it stopped (no restart policy, no
    /// reload) until it is started again; "restart" it (stop, then start).
    /// Returns the plugin's state after the command; file_not_found for no
    /// such plugin, invalid_parameter for another action.
    std::string control(std::string_view name, std::string_view action, std::error_code& ec);

    /// Stops every plugin: SIGTERM, then SIGKILL after its stop timeout.
    /// Calls `done` once every plugin process has exited.
    void stop_all(std::function<void()> done);

    /// The "plugins" admin answer; with `log_lines`, each plugin's last lines
    /// of output (and the host's lines about it) as "log".
    [[nodiscard]] boost::json::object describe(std::size_t log_lines = 0) const;
    /// The "logs" admin answer: up to `lines` of plugin `name`'s kept output,
    /// the newest that fit half a frame (file_not_found for no such plugin).
    [[nodiscard]] boost::json::object logs(std::string_view name, std::size_t lines,
                                           std::error_code& ec) const;
    static constexpr std::size_t kept_log_lines = 200;
    /// The permissions the manifest of plugin `name` gives it; null for no such plugin.
    [[nodiscard]] std::shared_ptr<const grant_list> permissions_of(std::string_view name) const;
    [[nodiscard]] std::size_t running() const;

private:
    struct plugin;
    using plugin_ptr = std::shared_ptr<plugin>;

    void spawn(const plugin_ptr& p);
    void read_output(const plugin_ptr& p);
    void watch(const plugin_ptr& p);
    void on_exit(const plugin_ptr& p, int status);
    void stop(const plugin_ptr& p);
    void schedule_restart(const plugin_ptr& p);
    /// Reaps what is left of an exited plugin's process group, polling until
    /// none is left or `give_up`; shutdown waits for it.
    void reap_group(const std::string& name, int group,
                    std::chrono::steady_clock::time_point give_up);
    void check_all_stopped();
    void reap_orphans_on_sigchld();
    void reap_orphans();

    boost::asio::io_context& io_;
    core& core_;
    supervisor_options options_;
    std::map<std::string, plugin_ptr> plugins_;
    std::function<void()> on_all_stopped_;
    bool shutting_down_ = false;
    boost::asio::signal_set child_exits_; ///< SIGCHLD: orphans to reap
    std::set<int> lingering_groups_;      ///< exited plugins' groups with members still dying
    std::vector<manifest_error> manifest_errors_; ///< of the last reload
    static constexpr std::chrono::milliseconds group_reap_limit{2000};
};

} // namespace slotbus::bus
