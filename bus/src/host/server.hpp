// The host: one session per connection its transports accept (the Unix
// socket, and TCP or TLS listeners when asked for), the admin plane, the
// signals that stop and reload it.
// Everything it reads goes through the routing core.
#pragma once

#include "broadcasts.hpp"
#include "links.hpp"
#include "session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/core.hpp"
#include "plugins/supervisor.hpp"
#include "service/log.hpp"
#include "transport/tcp/listener.hpp"
#include "transport/unix/listener.hpp"

namespace slotbus::bus {

struct host_options {
    std::string socket_path;
    /// Who may connect: mode 0600 (this uid) unless the operator shares the
    /// socket with a group (0660 and socket_group) or everyone (0666); what
    /// each may do is the policy's to say.
    unsigned socket_mode = 0600;
    std::optional<unsigned> socket_group;
    /// Clients over TCP (loopback) and TLS besides the Unix socket (`--listen`).
    std::vector<network_listener_options> listen;
    std::filesystem::path policy_file; ///< empty: the built-in default policy
    core_limits limits;
    std::size_t max_held = 8u << 20;      ///< bytes held behind a full slot before input is paused
    std::uint32_t max_connections = 1024; ///< open connections in all
    /// Open connections of one uid (of one client name, over TLS).
    std::uint32_t max_connections_per_uid = 512;
    /// A connection says hello within this long, or is closed.
    std::chrono::milliseconds hello_timeout{5000};
    /// A connection whose output is over --max-outbox and whose socket took
    /// none of it for this long has stopped reading: it is closed.
    std::chrono::milliseconds stall_timeout{30'000};
    std::vector<std::filesystem::path> plugins_dirs; ///< none: no plugins
    /// Links to other hosts (`--peers`); none: `\\HOST\` names of others fail with 53.
    std::optional<link_options> links;
    /// Domain broadcasts (`--broadcast`); none: `\\*\` and `\\DOMAIN\`
    /// writes reach this host's slots only.
    std::optional<broadcast_options> broadcast;
    bool verbose = false;
    /// Called on SIGHUP after the manifests are reloaded (the log file is reopened).
    std::function<void()> on_reload;
};

/// Runs on one io_context thread: the core needs no locks.
class server : private session_owner {
public:
    server(boost::asio::io_context& io, host_options options);
    ~server();

    /// Binds the socket (mode 0600). Fails with error::already_exists when a
    /// live host answers on it; replaces the socket of a dead one. Fails with
    /// std::errc::invalid_argument for a bad policy, key, peers or clients
    /// file or --listen address: start_failure() says which.
    void start(std::error_code& ec);
    [[nodiscard]] const std::string& start_failure() const noexcept { return start_failure_; }
    /// Stops the plugins (SIGTERM, then SIGKILL after their grace period),
    /// then stops accepting, closes every connection and removes the socket.
    void stop();

    [[nodiscard]] const std::string& socket_path() const noexcept { return options_.socket_path; }
    /// The port links are accepted on, 0 if none.
    [[nodiscard]] std::uint16_t link_port() const noexcept { return links_ ? links_->port() : 0; }
    /// Where broadcasts go and come from ("239.255.83.66:47077"), empty if nowhere.
    [[nodiscard]] std::string broadcasting() const
    {
        return broadcasts_ ? broadcasts_->where() : "";
    }
    /// Where clients may connect besides the socket: "tls:198.18.0.2:47079", ...
    [[nodiscard]] std::vector<std::string> listening() const;

private:
    // What its sessions may ask of it (session_owner).
    core& routing() noexcept override { return core_; }
    std::size_t max_held() const noexcept override { return options_.max_held; }
    void flush_touched() override;
    void forget(session_id id, std::string_view reason) override;

    /// A new connection, from any transport: a session, or refused past the connection caps.
    /// `key`: the fingerprint a TLS client proved.
    void admit(detail::byte_stream stream, peer_info peer, std::string key = {});
    /// Reads the clients files again (SIGHUP); connections of clients no
    /// longer listed are closed.
    void reload_clients();
    /// Closes connections past their hello deadline or stalled (every ~quarter second).
    void sweep();
    void log_slot_event(const core::slot_event& e);
    void wait_signal();
    void finish_stop();
    /// Reads --policy again (SIGHUP); a bad file keeps the policy in force.
    void reload_policy();
    /// What SIGHUP and the `reload` admin command do: the log file, the
    /// policy, the clients and the plugin manifests read again. Returns the
    /// manifests' errors, for the command's answer.
    boost::json::object reload(std::string_view why);
    std::string explain(std::string_view argument, std::error_code& ec) const;
    std::string answer_admin(session_id from, std::string_view command, std::string_view argument,
                             std::error_code& ec);

    boost::asio::io_context& io_;
    host_options options_;
    core core_;
    unix_listener listener_;
    std::vector<std::unique_ptr<network_listener>> network_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer sweep_timer_;
    std::unordered_map<session_id, std::shared_ptr<session>> sessions_;
    // Who each connection is ("uid 1000", "client ci"), for the per-identity
    // cap, and the key a TLS client proved, for a reload of the clients.
    struct connection_identity {
        std::string who, client, key; // client, key: a TLS client's name and fingerprint
    };
    std::unordered_map<session_id, connection_identity> who_of_;
    std::unordered_map<std::string, std::uint32_t> connections_of_;
    rate_limited_log refusals_{std::chrono::seconds(5)};
    // Slots holding writers, slow, caught up: a few lines, in pairs, per slot
    // that has been full for a second at least; many slots at once are cut.
    rate_limited_log slow_log_{std::chrono::seconds(10), level::warning, 20};
    std::unique_ptr<supervisor> plugins_;
    std::unique_ptr<links> links_;
    std::unique_ptr<broadcasts> broadcasts_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::string start_failure_;
    bool stopping_ = false;
    bool stopped_ = false;
};

} // namespace slotbus::bus
