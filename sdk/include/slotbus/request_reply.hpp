// Request/reply over slots: a request envelope names a reply slot (`replyto`);
// the reply carries the request's id (`correlationid`).
#pragma once

#include "slotbus/export.hpp"
#include "slotbus/publisher.hpp"
#include "slotbus/subscriber.hpp"

#include <chrono>
#include <optional>

namespace slotbus {

/// Sends requests and waits for their replies on a temporary slot of its own
/// (`_reply\ID`, created at the first request, destroyed with the requester).
///
/// @code
/// slotbus::requester ask(bus, "dashboard");
/// auto pong = ask.request<pong_reply>("services/health", ping{}, std::chrono::seconds(1));
/// @endcode
class SLOTBUS_API requester {
public:
    requester(connection& bus, std::string plugin = {});

    /// Sends `data` as an event of `type` to `name` and waits up to `timeout`
    /// for the reply. Errors: error::file_not_found at once when no slot
    /// took the request (nothing receives `name`, or every receiver dropped it); error::sem_timeout
    /// when no reply came in time (a late reply is discarded by the next request).
    envelope request(std::string_view name, std::string_view type, boost::json::value data,
                     std::chrono::milliseconds timeout, std::error_code& ec);

    /// Typed: a Request out, a Reply back. Errors: those above, and
    /// error::invalid_data when the reply is not a Reply.
    template <event Reply, event Request>
    std::optional<Reply> request(std::string_view name, const Request& data,
                                 std::chrono::milliseconds timeout, std::error_code& ec)
    {
        auto reply = request(name, Request::event_type, boost::json::value_from(data), timeout, ec);
        if (ec)
            return std::nullopt;
        return data_as<Reply>(reply, ec);
    }
    template <event Reply, event Request>
    Reply request(std::string_view name, const Request& data, std::chrono::milliseconds timeout)
    {
        std::error_code ec;
        auto reply = request<Reply>(name, data, timeout, ec);
        throw_if(ec, "slotbus::requester::request");
        return std::move(*reply);
    }

private:
    connection* bus_;
    publisher out_;
    server_slot replies_;
    std::uint32_t reply_timeout_ = 0;
};

/// Answers requests sent to its slot: each handler takes a Request and
/// returns a Reply, sent to the request's `replyto` with its id as
/// `correlationid`. Malformed requests and duplicates are handled as by
/// subscriber (counted, never thrown).
///
/// @code
/// slotbus::responder health(bus, "services/health", "health");
/// auto h = health.on<ping>([](const ping&) { return pong_reply{"ok"}; });
/// health.process_for(std::chrono::seconds(1));
/// @endcode
class SLOTBUS_API responder {
public:
    /// Creates the slot `name`. Errors: those of server_slot::create.
    responder(connection& bus, std::string_view name, std::string plugin = {});

    template <event Request, class Handler> subscription on(Handler handler)
    {
        return requests_.on<Request>(
            requests_.inbox().name().path(),
            [this, h = std::move(handler)](const Request& request, const envelope& e) mutable {
                reply(e, h(request));
            });
    }

    std::size_t process_for(std::chrono::milliseconds idle) { return requests_.process_for(idle); }
    template <boost::asio::completion_token_for<void(boost::system::error_code)> Token =
                  boost::asio::deferred_t>
    auto async_run(Token&& token = {})
    {
        return requests_.async_run(std::forward<Token>(token));
    }
    void stop() { requests_.stop(); }

    [[nodiscard]] const subscriber::statistics& stats() const noexcept { return requests_.stats(); }
    /// Replies that could not be sent (the requester was gone).
    [[nodiscard]] std::uint64_t undeliverable() const noexcept { return undeliverable_; }

private:
    template <event Reply> void reply(const envelope& request, const Reply& data)
    {
        if (request.replyto.empty())
            return; // a one-way event: nothing to answer
        auto e = make_envelope(out_.source(), request.replyto, data);
        e.correlationid = request.id;
        std::error_code ec;
        out_.publish(request.replyto, e, ec);
        undeliverable_ += ec ? 1 : 0;
    }

    subscriber requests_;
    publisher out_;
    std::uint64_t undeliverable_ = 0;
};

} // namespace slotbus
