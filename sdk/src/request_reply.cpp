#include "slotbus/request_reply.hpp"

namespace slotbus {

requester::requester(connection& bus, std::string plugin) : bus_(&bus), out_(bus, std::move(plugin))
{
}

envelope requester::request(std::string_view name, std::string_view type, boost::json::value data,
                            std::chrono::milliseconds timeout, std::error_code& ec)
{
    if (!replies_.is_open()) {
        replies_ = server_slot::create(*bus_, "_reply/" + next_event_id(), 0, 0, ec);
        if (ec)
            return {};
    }
    auto request = make_envelope(out_.source(), type, publisher::subject_of(name), std::move(data));
    request.replyto = replies_.name().str();
    // A publish to nobody is 0 delivered; a request that no slot took has
    // nobody to answer it: no wait.
    if (out_.publish(name, request, ec) == 0 && !ec)
        ec = error::file_not_found;
    if (ec)
        return {};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (bool first = true;; first = false) {
        // The reply slot keeps the last timeout asked for: the same timeout
        // again costs no round trip. After a stale reply, wait what is left.
        const auto left = first ? timeout
                                : std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now());
        const auto wait = static_cast<std::uint32_t>(std::max<std::int64_t>(left.count(), 0));
        if (wait != reply_timeout_) {
            replies_.set_read_timeout(wait, ec);
            if (ec)
                return {};
            reply_timeout_ = wait;
        }
        auto record = replies_.read_record(ec);
        if (ec)
            return {}; // sem_timeout: no reply in time
        std::error_code parse_ec;
        auto reply = parse_envelope(record.data, parse_ec);
        if (!parse_ec && reply.correlationid == request.id)
            return reply;
        // A late reply to an earlier request, or junk: not ours, keep waiting.
    }
}

responder::responder(connection& bus, std::string_view name, std::string plugin)
    : requests_(bus, name), out_(bus, std::move(plugin))
{
}

} // namespace slotbus
