// A connection to the host: the one socket a plugin's slots share.
#pragma once

#include "slotbus/address.hpp"
#include "slotbus/detail/connection_impl.hpp"
#include "slotbus/error.hpp"
#include "slotbus/export.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace slotbus {

/// How async_run keeps a connection up: heartbeat period, reconnect back-off.
using run_timing = detail::run_timing;

/// `$SLOTBUS_TOKEN`: the token slotbusd gives a plugin it launches; empty otherwise.
/// Read at the first call, then removed from the environment (children of the
/// plugin do not inherit it); later calls return what was read.
SLOTBUS_API std::string plugin_token_from_environment();

struct SLOTBUS_API connection_options {
    /// Shown in the host's log and its listings.
    std::string client_name = "slotbus-client";
    /// Records the host may push to a reader ahead of its reads. 0: none; a
    /// reader takes one record at a time while a read of it waits, so a
    /// queue shared with duplicates goes to whoever reads (slower: a frame
    /// each way per record).
    std::uint32_t window = 1024;
    /// Identifies a plugin to the host that launched it (see plugin_name()).
    /// A token the host does not know makes connecting fail with
    /// error::invalid_handle.
    std::string plugin_token = plugin_token_from_environment();
    /// For a `tls:` address: this client's key and the host's pinned one.
    tls_options tls = tls_options_from_environment();
};

/// One connection to slotbusd. Slots created or opened through it share its socket.
///
/// Constructed without an executor, it owns an io_context that its
/// synchronous calls run on the calling thread (no background thread).
/// Constructed on an executor, it lives there; that executor must not run on
/// several threads at once (use a strand), and synchronous calls must not be
/// made from its thread.
///
/// @code
/// slotbus::connection bus;
/// bus.connect(); // $SLOTBUS_ADDRESS, else the default socket
/// @endcode
class SLOTBUS_API connection {
public:
    explicit connection(connection_options options = {});
    explicit connection(boost::asio::any_io_executor executor, connection_options options = {});
    ~connection();
    connection(connection&&) noexcept = default;
    connection& operator=(connection&&) noexcept = default;

    /// Connects and greets the host. `address` is `unix:PATH`, a socket path,
    /// `tcp:HOST:PORT` or `tls:HOST:PORT` (see parse_address). Errors: the
    /// socket's own (no host: std::errc::no_such_file_or_directory or
    /// connection_refused),
    /// error::invalid_name (not an address: an unknown scheme; last_failure()
    /// names it),
    /// error::access_denied (the process listening there runs as another
    /// user than this one or root: not trusted; last_failure() names the
    /// socket and its uid; over TLS: the host showed another key than the
    /// pinned one, or refused this client's), error::invalid_parameter (a
    /// `tls:` address without options.tls, or a key directory that is not
    /// usable; last_failure() says which), error::not_supported (no common
    /// protocol version).
    void connect(const std::string& address, std::error_code& ec);
    void connect(const std::string& address);
    /// Connects to default_address().
    void connect();

    /// Connects asynchronously. Completion signature: void(boost::system::error_code).
    template <boost::asio::completion_token_for<void(boost::system::error_code)> Token =
                  boost::asio::deferred_t>
    auto async_connect(std::string address, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::string where,
               std::string name) {
                impl->start_connect(
                    std::move(where), std::move(name),
                    [h = std::move(handler)](boost::system::error_code ec, detail::reply) mutable {
                        std::move(h)(ec);
                    });
            },
            token, impl_, std::move(address), options_.client_name);
    }

    /// Keeps the connection up, in the shape of Boost.Redis's async_run:
    /// connects (unless connected), and whenever the connection fails —
    /// the host restarted, stopped answering heartbeats, or closed it —
    /// reconnects with exponential back-off and re-creates every slot,
    /// writer handle and subscription made through it, with the same
    /// handles. Reads waiting on a slot stay waiting across the reconnect
    /// (the host's unread records went with it, as a mailslot's do: records
    /// held here are read first, then the new slot's first record has
    /// missed_before == gap_unknown); other calls made between connections,
    /// and until every handle is restored, fail with error::broken_pipe; a
    /// write sent whose result never came fails with error::netname_deleted. A
    /// duplicate attached with a token cannot come back (the token is spent):
    /// its reads end with error::broken_pipe. Completes with
    /// boost::asio::error::operation_aborted when close() is called.
    /// Completion signature: void(boost::system::error_code).
    template <boost::asio::completion_token_for<void(boost::system::error_code)> Token =
                  boost::asio::deferred_t>
    auto async_run(std::string address, detail::run_timing timing = {}, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::string where,
               std::string name, detail::run_timing t) {
                impl->start_run(std::move(where), std::move(name), t,
                                detail::run_handler(std::move(handler)));
            },
            token, impl_, std::move(address), options_.client_name, timing);
    }

    /// For a connection that owns its context: runs the completion handlers of
    /// asynchronous operations (callbacks, coroutines) on this thread until
    /// none is left, stop() is called or `limit` passes. A connection built on
    /// an executor is run by whoever runs that executor: these do nothing.
    void run();
    void run_for(std::chrono::milliseconds limit);
    /// Makes run() return soon; safe from a handler.
    void stop();

    /// Closes the socket; every handle on it fails with error::broken_pipe from now on.
    void close();

    [[nodiscard]] boost::asio::any_io_executor get_executor() const;
    /// The largest record a write on this connection takes, learned when
    /// connecting: the host's limit for the socket, or for a shared-memory
    /// lane where the host gives this connection lanes (docs/lanes.md).
    [[nodiscard]] std::uint32_t max_record_size() const noexcept;
    /// Why the connection last failed, in words: the host's own reason from its
    /// `fatal` frame, or the socket's ("End of file" or "Broken pipe" when the
    /// host stopped).
    /// After a failed connect, what it was about ("cannot connect to
    /// unix:PATH: No such file or directory"); a new connect clears it.
    /// Read it on the connection's thread after a call failed with
    /// error::broken_pipe or error::invalid_data, or a connect failed; empty
    /// while all is well.
    [[nodiscard]] std::string last_failure() const;
    /// The host's machine name, learned when connecting.
    [[nodiscard]] const std::string& host_name() const noexcept;
    /// The plugin the host knows this connection as (from its token), learned
    /// when connecting; empty for a process the host did not launch.
    [[nodiscard]] const std::string& plugin_name() const noexcept;

    /// Not API: the shared protocol state slots hold on to.
    [[nodiscard]] const std::shared_ptr<detail::connection_impl>& impl() const noexcept
    {
        return impl_;
    }

private:
    std::shared_ptr<detail::connection_impl> impl_;
    connection_options options_;
};

} // namespace slotbus
