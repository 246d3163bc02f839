// The host's admin plane: what the `slotbus` CLI and the metrics plugin ask
// slotbusd about itself.
#pragma once

#include "slotbus/connection.hpp"
#include "slotbus/export.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace slotbus {

namespace detail {
using admin_handler =
    boost::asio::any_completion_handler<void(boost::system::error_code, boost::json::value)>;
SLOTBUS_API void start_admin(std::shared_ptr<connection_impl> impl, std::string command,
                             std::string argument, admin_handler h);
} // namespace detail

/// Asks the host a question about itself. Commands (docs/protocol.md gives
/// each answer's JSON):
/// - "slots", argument a path prefix ("" for all) or {"prefix", "after",
///   "limit"}: a page of the slots there, each with its owner, queue,
///   subscriptions and counters, and "next" (where the next page starts, or
///   null); list_slots() walks every page;
/// - "stats", argument "" or {"top": N}: the host's totals and the counters
///   of its N busiest slots (100 unless asked; 1000 at most);
/// - "plugins": the supervised plugins, their state, pid and restarts;
/// - "stop": the host stops gracefully (answered first).
/// Errors: error::invalid_function (a command this host does not know),
/// error::invalid_data (an answer that is not JSON), error::broken_pipe.
///
/// @code
/// auto stats = slotbus::admin(bus, "stats");
/// std::cout << stats.at("slot_count") << '\n';
/// @endcode
SLOTBUS_API boost::json::value admin(connection& bus, std::string_view command,
                                     std::string_view argument, std::error_code& ec);
SLOTBUS_API boost::json::value admin(connection& bus, std::string_view command,
                                     std::string_view argument = {});

/// Every slot at or below `prefix` (empty: all), as the "slots" answer
/// lists them, fetched a page at a time (a listing of any size). Errors as
/// admin's.
SLOTBUS_API boost::json::array list_slots(connection& bus, std::string_view prefix,
                                          std::error_code& ec);
SLOTBUS_API boost::json::array list_slots(connection& bus, std::string_view prefix = {});

/// admin, asynchronously. Completion signature:
/// void(boost::system::error_code, boost::json::value).
template <boost::asio::completion_token_for<void(boost::system::error_code, boost::json::value)>
              Token = boost::asio::deferred_t>
auto async_admin(connection& bus, std::string command, std::string argument, Token&& token = {})
{
    return boost::asio::async_initiate<Token, void(boost::system::error_code, boost::json::value)>(
        [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::string c,
           std::string a) {
            detail::start_admin(std::move(impl), std::move(c), std::move(a),
                                detail::admin_handler(std::move(handler)));
        },
        token, bus.impl(), std::move(command), std::move(argument));
}

} // namespace slotbus
