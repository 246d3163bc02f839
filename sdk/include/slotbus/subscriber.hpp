// Subscribing by type: envelopes arriving on an inbox slot, converted to the
// C++ structs their handlers take.
#pragma once

#include "slotbus/detail/recent_keys.hpp"
#include "slotbus/envelope.hpp"
#include "slotbus/export.hpp"
#include "slotbus/server_slot.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slotbus {

/// An inbox slot and the handlers of the events it subscribes to. A record is
/// parsed as an envelope, dropped as forged if its `source` is not its
/// sender's (the host stamps each record: a `/plugins/NAME` source must come
/// from plugin NAME, and a plugin publishes only as itself), dropped if its
/// `source` + `id` was seen already (the "one copy per protocol" caveat of
/// mailslots), and handed to every handler whose type is the envelope's and
/// whose pattern matches the name it was written to (the host's word; the
/// envelope's `subject` only when the host gave none). A record that is not a valid envelope, or
/// whose data does not convert, goes to the error handler and counts as malformed; nothing throws
/// into the receive loop. Not thread-safe; use it where its connection is used.
///
/// @code
/// slotbus::subscriber sub(bus, "billing/inbox");
/// auto orders = sub.on<order_created>("events/orders/**", [](const order_created& o) { ... });
/// sub.process_for(std::chrono::seconds(1));
/// @endcode
class SLOTBUS_API subscriber {
public:
    struct statistics {
        std::uint64_t received = 0;   ///< records read
        std::uint64_t dispatched = 0; ///< handler calls
        std::uint64_t malformed = 0;  ///< not an envelope, or data that does not convert
        std::uint64_t duplicates = 0; ///< source + id seen before: dropped
        std::uint64_t unhandled = 0;  ///< valid, but no handler for its type and subject
        std::uint64_t missed = 0;     ///< dropped by the inbox's overflow policy, as told
        std::uint64_t forged = 0;     ///< a source that is not its sender's: dropped
    };
    using error_handler = std::function<void(std::error_code, const std::string& why)>;

    /// Creates the inbox slot. Errors: those of server_slot::create.
    subscriber(connection& bus, std::string_view inbox, const slot_options& options = {});

    /// Subscribes the inbox to `pattern` and calls `handler` with each event
    /// of type T, as `handler(const T&)` or `handler(const T&, const envelope&)`.
    /// Dropping the returned subscription unsubscribes.
    template <event T, class Handler> subscription on(std::string_view pattern, Handler handler)
    {
        auto parsed = topic_pattern::parse(pattern);
        constexpr bool wants_envelope = std::is_invocable_v<Handler&, const T&, const envelope&>;
        routes_.push_back(
            {parsed, std::string(T::event_type), wants_envelope,
             [h = std::move(handler)](const envelope& e, const boost::json::value& data,
                                      std::error_code& ec, std::string& why) mutable {
                 auto value = from_data<T>(data, &why);
                 if (!value) {
                     ec = error::invalid_data;
                     return;
                 }
                 if constexpr (wants_envelope)
                     h(*value, e);
                 else
                     h(*value);
             }});
        return inbox_.subscribe(pattern);
    }

    /// Called for every malformed record, with what was wrong.
    void on_error(error_handler handler) { on_error_ = std::move(handler); }

    /// Receives and dispatches until nothing has arrived for `idle`; returns
    /// the number of records processed.
    std::size_t process_for(std::chrono::milliseconds idle);

    /// Runs the receive loop on the connection's executor until stop() or a
    /// read error. Completion signature: void(boost::system::error_code);
    /// stop() completes it with boost::asio::error::operation_aborted.
    template <boost::asio::completion_token_for<void(boost::system::error_code)> Token =
                  boost::asio::deferred_t>
    auto async_run(Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
            [this](auto handler) {
                done_.emplace(std::move(handler));
                stopping_ = false;
                next();
            },
            token);
    }
    /// Ends async_run; the inbox stays open. Never blocks: call it from a handler.
    void stop();

    /// Handles one record as if it had been read (for tests and bridges).
    void dispatch(const received_record& record);

    [[nodiscard]] const statistics& stats() const noexcept { return stats_; }
    [[nodiscard]] server_slot& inbox() noexcept { return inbox_; }

private:
    struct route {
        topic_pattern pattern;
        std::string type;
        bool wants_envelope; // its data too: else it is converted straight from the parse
        std::function<void(const envelope&, const boost::json::value& data, std::error_code&,
                           std::string&)>
            call;
    };

    void next();
    std::size_t drain_backlog();

    server_slot inbox_;
    std::vector<route> routes_;
    error_handler on_error_;
    statistics stats_;
    // Read in a batch, not handed out yet: whole batches (one buffer each),
    // and how far into the front one the handlers have got.
    std::deque<record_batch> backlog_;
    std::size_t backlog_at_ = 0;
    void handle(std::string_view data, std::uint32_t missed_before, const record_sender& from);
    detail::recent_keys seen_;                    // source + id of the last events: duplicates
    std::string last_written_, last_written_key_; // the last name written to, and its key
    envelope current_; // the event being handled: its strings' storage serves the next one
    bool handling_ = false;
    // In an optional, emplaced: Boost 1.81's any_completion_handler must never
    // be move-assigned (its operator= recurses without end).
    std::optional<boost::asio::any_completion_handler<void(boost::system::error_code)>> done_;
    bool stopping_ = false;
};

} // namespace slotbus
