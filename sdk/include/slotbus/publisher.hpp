// Publishing typed events: a C++ struct in, a CloudEvents envelope on a topic.
#pragma once

#include "slotbus/client_slot.hpp"
#include "slotbus/envelope.hpp"
#include "slotbus/export.hpp"

#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace slotbus {

/// Publishes envelopes whose `source` is `/plugins/NAME` (a plugin) or
/// `/clients/NAME` (anyone else). Keeps a writer
/// handle open per topic it publishes to, for the `max_open_topics` topics
/// published to last (the host limits a connection's handles; a responder
/// answers a reply slot per requester). Not thread-safe; use it where its
/// connection is used.
///
/// @code
/// slotbus::publisher pub(bus, "shop");
/// pub.publish("events/orders", order_created{"A-1", 42.0});
/// @endcode
class SLOTBUS_API publisher {
public:
    /// A plugin the host launched publishes as `/plugins/NAME`, NAME as the
    /// host knows it (connection::plugin_name()), whatever `plugin` says;
    /// any other client as `/clients/NAME`, NAME being `plugin`, else
    /// $SLOTBUS_PLUGIN, else `pid-N` (subscribers drop a `/plugins/` source
    /// from a sender that is not that plugin).
    publisher(connection& bus, std::string plugin = {});

    /// Publishes one event; returns how many slots received it: 0 when
    /// nobody listens to the topic, which is not an error (as in NATS and
    /// MQTT; the host counts it as `unrouted`). Errors: those of
    /// client_slot::open and client_slot::write but file_not_found.
    template <event T>
    std::uint32_t publish(std::string_view topic, const T& data, std::error_code& ec)
    {
        return publish_record(topic, record_of(topic, data), ec);
    }
    template <event T> std::uint32_t publish(std::string_view topic, const T& data)
    {
        std::error_code ec;
        auto delivered = publish(topic, data, ec);
        throw_if(ec, "slotbus::publisher::publish");
        return delivered;
    }
    /// Publishes a ready envelope as it is (its subject and source included).
    std::uint32_t publish(std::string_view topic, const envelope& e, std::error_code& ec);

    /// Publishes without waiting for the result; the first publish to a topic
    /// opens it asynchronously too, so this never blocks. Completion
    /// signature: void(boost::system::error_code, std::uint32_t delivered).
    /// With boost::asio::detached, the result may come late, as for
    /// client_slot::async_write.
    template <event T,
              boost::asio::completion_token_for<void(boost::system::error_code, std::uint32_t)>
                  Token = boost::asio::deferred_t>
    auto async_publish(std::string_view topic, const T& data, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::uint32_t)>(
            [this](auto handler, std::string to, std::string record) {
                start_publish(std::move(to), std::move(record),
                              detail::write_handler(std::move(handler)),
                              client_slot::pace_for<Token>);
            },
            token, std::string(topic), record_of(topic, data));
    }

    /// Publishes a record as it is, made into no envelope here: a bridge
    /// passing on what another bus carried. Otherwise as async_publish.
    template <boost::asio::completion_token_for<void(boost::system::error_code, std::uint32_t)>
                  Token = boost::asio::deferred_t>
    auto async_publish_record(std::string_view topic, std::string record, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::uint32_t)>(
            [this](auto handler, std::string to, std::string data) {
                start_publish(std::move(to), std::move(data),
                              detail::write_handler(std::move(handler)),
                              client_slot::pace_for<Token>);
            },
            token, std::string(topic), std::move(record));
    }

    /// Tells the topic's readers that `count` records were lost before the
    /// next one published to it (client_slot::report_lost), in order with
    /// the publishes.
    void report_lost(std::string_view topic, std::uint32_t count);

    [[nodiscard]] const std::string& source() const noexcept { return source_; }

    /// Writer handles kept open; publishing to one more topic closes the
    /// handle of the topic published to least recently.
    static constexpr std::size_t max_open_topics = 64;

    /// The envelope subject for a topic: its path, however it was spelled.
    static std::string subject_of(std::string_view topic);

private:
    /// The envelope text of a new event of `data` on `topic`, written
    /// straight into the record: no envelope, no JSON tree.
    template <event T> std::string record_of(std::string_view topic, const T& data)
    {
        std::string record;
        detail::begin_new_event(record, source_, T::event_type, resolve(topic).subject);
        detail::append_data(record, data);
        record += '}';
        return record;
    }
    std::uint32_t publish_record(std::string_view topic, const std::string& record,
                                 std::error_code& ec);
    /// A topic as spelled, parsed once: publishers mostly repeat the last one.
    struct resolved_topic {
        std::string spelling;
        std::string key;     ///< empty when the topic is not a valid name
        std::string subject; ///< the path, or the spelling when invalid
    };
    const resolved_topic& resolve(std::string_view topic);
    client_slot* slot_for(std::string_view topic, std::error_code& ec);
    /// The open handle for a name key, now the most recently used; or null.
    client_slot* find_open(std::string_view key);
    /// Keeps a newly opened handle (or the one already kept for `key`),
    /// closing the least recently used past max_open_topics.
    client_slot* keep_open(std::string key, client_slot slot);
    void start_publish(std::string topic, std::string record, detail::write_handler handler,
                       detail::results pace);

    connection* bus_;
    std::string source_;
    std::list<std::pair<std::string, client_slot>> open_; // by name key, most recent first
    std::unordered_map<std::string_view, decltype(open_)::iterator> by_key_; // keys in open_
    resolved_topic last_;
    // Publishes to a topic whose handle is being opened, in order, by name key.
    struct waiting_publish {
        std::string record;
        detail::write_handler handler;
        detail::results pace;
        std::uint32_t lost = 0; // not 0: a loss to tell (report_lost), no record
    };
    void queue_behind_open(std::string topic, const std::string& key, waiting_publish what);
    std::unordered_map<std::string, std::vector<waiting_publish>> opening_;
};

} // namespace slotbus
