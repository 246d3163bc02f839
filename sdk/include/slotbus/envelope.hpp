// Typed JSON envelopes: CloudEvents 1.0 in structured mode, and the mapping
// of `data` to and from described C++ structs.
#pragma once

#include "slotbus/error.hpp"
#include "slotbus/event_data.hpp"
#include "slotbus/export.hpp"

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <concepts>
#include <optional>
#include <string>
#include <string_view>

namespace slotbus {

/// One CloudEvents 1.0 event. `replyto` and `correlationid` are extension
/// attributes for request/reply; empty ones are left out of the JSON.
struct SLOTBUS_API envelope {
    std::string specversion = "1.0";
    std::string id;      ///< unique per source
    std::string source;  ///< `/plugins/NAME`
    std::string type;    ///< `orders.created`
    std::string time;    ///< RFC 3339, UTC
    std::string subject; ///< the slot path it was published to
    std::string datacontenttype = "application/json";
    boost::json::value data;
    std::string replyto;
    std::string correlationid;
};

/// The JSON text of an envelope.
SLOTBUS_API std::string serialize(const envelope& e);

/// Parses untrusted bytes. Errors: error::invalid_data, with `why` (if given)
/// naming what is wrong — not JSON, not an object, a missing or mistyped
/// attribute, a specversion other than 1.0. Never throws.
SLOTBUS_API envelope parse_envelope(std::string_view json, std::error_code& ec,
                                    std::string* why = nullptr);

/// A C++ type published as an event: a struct described with
/// BOOST_DESCRIBE_STRUCT (or with its own tag_invoke conversions) that names
/// its CloudEvents type.
///
/// @code
/// struct order_created {
///     static constexpr std::string_view event_type = "orders.created";
///     std::string order_id;
///     double amount;
/// };
/// BOOST_DESCRIBE_STRUCT(order_created, (), (order_id, amount))
/// @endcode
template <class T>
concept event = requires
{
    {
        T::event_type
        } -> std::convertible_to<std::string_view>;
};

namespace detail {
/// The JSON text of a new event (a fresh id, the current time), as
/// serialize(make_envelope(...)) gives it, up to and with `"data":`; the
/// caller appends the data and a closing `}`. No envelope is made.
SLOTBUS_API void begin_new_event(std::string& out, std::string_view source, std::string_view type,
                                 std::string_view subject);

/// parse_envelope without copying `data` out: the attributes are assigned into
/// `e` (the storage of its strings reused), `e.data` is left null, and the
/// parsed text goes into `document` (in its storage). Returns `data` in it
/// (nullptr when absent); on an error, nullptr with ec and `why` set.
SLOTBUS_API const boost::json::value* parse_envelope_into(std::string_view text, envelope& e,
                                                          boost::json::value& document,
                                                          std::error_code& ec, std::string* why);
} // namespace detail

/// `data` as a T, by the rules of from_data (unknown fields ignored, absent
/// ones defaulted). Errors: error::invalid_data when the type or the data do
/// not fit, with `why` naming the field.
template <event T>
std::optional<T> data_as(const envelope& e, std::error_code& ec, std::string* why = nullptr)
{
    if (e.type != T::event_type) {
        ec = error::invalid_data;
        if (why)
            *why = "type is " + e.type + ", not " + std::string(T::event_type);
        return std::nullopt;
    }
    auto converted = from_data<T>(e.data, why);
    if (!converted) {
        ec = error::invalid_data;
        return std::nullopt;
    }
    ec.clear();
    return converted;
}

/// A new envelope for `data`, with a fresh id and the current time.
SLOTBUS_API envelope make_envelope(std::string_view source, std::string_view type,
                                   std::string_view subject, boost::json::value data);

template <event T>
envelope make_envelope(std::string_view source, std::string_view subject, const T& data)
{
    return make_envelope(source, T::event_type, subject, boost::json::value_from(data));
}

/// An id unique to this process and run: a random prefix and a counter.
SLOTBUS_API std::string next_event_id();

} // namespace slotbus
