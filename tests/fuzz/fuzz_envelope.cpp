// libFuzzer target: envelopes and typed data from untrusted bytes, as a
// subscriber meets them. The event parser must never crash, must agree with
// Boost.JSON's tree parser on what is JSON, and with itself on what it read
// (parse_envelope and the subscriber's parse_envelope_into); what it accepts
// must serialize back to an envelope that parses the same; typed conversion
// of whatever `data` holds must fail cleanly or give a value that writes
// back and converts again to the same text.
#include "slotbus/envelope.hpp"

#include <boost/describe/class.hpp>
#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

struct line {
    std::string sku;
    int quantity = 0;
    std::optional<double> price;
};
BOOST_DESCRIBE_STRUCT(line, (), (sku, quantity, price))

struct order {
    static constexpr std::string_view event_type = "orders.created";
    std::string order_id;
    double amount = 0;
    std::uint32_t items = 0;
    bool express = false;
    std::vector<line> lines;
    std::optional<std::string> note;
};
BOOST_DESCRIBE_STRUCT(order, (), (order_id, amount, items, express, lines, note))

} // namespace fuzz

namespace {

bool same_attributes(const slotbus::envelope& a, const slotbus::envelope& b)
{
    return a.specversion == b.specversion && a.id == b.id && a.source == b.source &&
           a.type == b.type && a.time == b.time && a.subject == b.subject &&
           a.datacontenttype == b.datacontenttype && a.replyto == b.replyto &&
           a.correlationid == b.correlationid;
}

void typed(const boost::json::value& data)
{
    std::string why;
    const auto value = slotbus::from_data<fuzz::order>(data, &why);
    if (!value) {
        if (why.empty())
            std::abort(); // a refusal says why
        return;
    }
    std::string text;
    slotbus::detail::append_data(text, *value);
    boost::system::error_code ec;
    if (boost::json::parse(text, ec); ec)
        std::abort(); // what we write is JSON
    // Read back with the SDK's parser, as a subscriber would (Boost.JSON
    // 1.81's own rounds some decimals one bit off).
    std::error_code read_ec;
    const auto reread = slotbus::parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/f","type":"t","data":)" + text + "}", read_ec);
    if (read_ec)
        std::abort();
    const auto again = slotbus::from_data<fuzz::order>(reread.data);
    if (!again)
        std::abort(); // and reads back
    std::string twice;
    slotbus::detail::append_data(twice, *again);
    if (twice != text)
        std::abort(); // the same
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    std::error_code ec;
    std::string why;
    const auto e = slotbus::parse_envelope(text, ec, &why);

    slotbus::envelope into;
    boost::json::value document;
    std::error_code ec_into;
    std::string why_into;
    const auto* found =
        slotbus::detail::parse_envelope_into(text, into, document, ec_into, &why_into);
    if (bool(ec) != bool(ec_into))
        std::abort(); // the two parses must agree
    if (ec) {
        if (why.empty() || found)
            std::abort();
        return 0;
    }
    if (!same_attributes(e, into) || (found ? *found != e.data : !e.data.is_null()))
        std::abort();

    boost::system::error_code json_ec;
    if (boost::json::parse(text, json_ec); json_ec)
        std::abort(); // accepted, so it is JSON

    const auto back = slotbus::parse_envelope(slotbus::serialize(e), ec);
    if (ec || !same_attributes(e, back) || back.data != e.data)
        std::abort(); // what we write, we read back the same

    typed(e.data);
    return 0;
}
