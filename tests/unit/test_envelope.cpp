#define BOOST_TEST_MODULE envelope
#include "order.hpp" // the orders sample's event: shop::order_created

#include "slotbus/envelope.hpp"

#include <boost/describe/class.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <regex>
#include <set>

using namespace slotbus;

namespace shop {

struct line {
    std::string sku;
    int quantity = 0;
};
BOOST_DESCRIBE_STRUCT(line, (), (sku, quantity))

struct basket_updated {
    static constexpr std::string_view event_type = "baskets.updated";
    std::string basket;
    std::vector<line> lines;
    std::optional<std::string> coupon;
};
BOOST_DESCRIBE_STRUCT(basket_updated, (), (basket, lines, coupon))

bool operator==(const line& a, const line& b)
{
    return a.sku == b.sku && a.quantity == b.quantity;
}
} // namespace shop

BOOST_AUTO_TEST_CASE(described_types_round_trip)
{
    const shop::order_created order{"A-17", 99.5, "EUR", 3, true};
    auto e = make_envelope("/plugins/shop", R"(events\orders)", order);
    std::error_code ec;
    auto back = parse_envelope(serialize(e), ec);
    BOOST_TEST(!ec);
    BOOST_TEST(back.type == "orders.created");
    BOOST_TEST(back.source == "/plugins/shop");
    BOOST_TEST(back.subject == R"(events\orders)");
    auto value = data_as<shop::order_created>(back, ec);
    BOOST_TEST_REQUIRE(value.has_value());
    BOOST_TEST(value->order_id == "A-17");
    BOOST_TEST(value->amount == 99.5);
    BOOST_TEST(value->items == 3);
    BOOST_TEST(value->express);

    const shop::basket_updated basket{"b1", {{"x", 1}, {"y", 2}}, std::nullopt};
    auto b = data_as<shop::basket_updated>(
        parse_envelope(serialize(make_envelope("/plugins/shop", "baskets", basket)), ec), ec);
    BOOST_TEST_REQUIRE(b.has_value());
    BOOST_TEST((b->lines == basket.lines));
    BOOST_TEST(!b->coupon.has_value());
}

BOOST_AUTO_TEST_CASE(every_attribute_is_written_and_read)
{
    auto e = make_envelope("/plugins/a", "t.x", "a\\b", boost::json::value(1));
    e.replyto = R"(\\.\mailslot\_reply\7)";
    e.correlationid = "c-1";
    auto json = boost::json::parse(serialize(e)).as_object();
    for (auto key : {"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                     "data", "replyto", "correlationid"})
        BOOST_TEST(json.contains(key), key);
    BOOST_TEST(json["specversion"] == "1.0");
    BOOST_TEST(json["datacontenttype"] == "application/json");
    // RFC 3339, UTC.
    BOOST_TEST(std::regex_match(e.time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")),
               e.time);
    std::error_code ec;
    auto back = parse_envelope(serialize(e), ec);
    BOOST_TEST(back.replyto == e.replyto);
    BOOST_TEST(back.correlationid == "c-1");
    // Extensions left empty are left out.
    auto plain = boost::json::parse(serialize(make_envelope("/p", "t", "s", {}))).as_object();
    BOOST_TEST(!plain.contains("replyto"));
}

BOOST_AUTO_TEST_CASE(ids_are_unique)
{
    std::set<std::string> ids;
    for (int i = 0; i < 10000; ++i)
        BOOST_TEST_REQUIRE(ids.insert(next_event_id()).second);
}

BOOST_AUTO_TEST_CASE(malformed_envelopes_are_errors_not_exceptions)
{
    const std::string_view bad[] = {
        "",
        "not json",
        "[1,2,3]",
        R"({"id":"1","source":"/p","type":"t"})",                     // no specversion
        R"({"specversion":"1.0","source":"/p","type":"t"})",          // no id
        R"({"specversion":"1.0","id":"1","type":"t"})",               // no source
        R"({"specversion":"1.0","id":"1","source":"/p"})",            // no type
        R"({"specversion":"1.0","id":1,"source":"/p","type":"t"})",   // mistyped
        R"({"specversion":"1.0","id":"","source":"/p","type":"t"})",  // empty
        R"({"specversion":"0.3","id":"1","source":"/p","type":"t"})", // another version
        R"({"specversion":"1.0","id":"1","source":"/p","type":"t","subject":7})",
        "{\"specversion\":\"1.0\",\"id\":\"1\"", // truncated
    };
    for (auto text : bad) {
        std::error_code ec;
        std::string why;
        BOOST_CHECK_NO_THROW(parse_envelope(text, ec, &why));
        BOOST_TEST(ec == error::invalid_data, "accepted: " << text);
        BOOST_TEST(!why.empty());
    }
}

BOOST_AUTO_TEST_CASE(data_that_does_not_convert_is_an_error)
{
    std::error_code ec;
    std::string why;
    auto e = parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/p","type":"orders.created","data":{"order_id":5}})",
        ec);
    BOOST_TEST(!ec);
    BOOST_TEST(!data_as<shop::order_created>(e, ec, &why).has_value());
    BOOST_TEST(ec == error::invalid_data);
    e.type = "something.else";
    BOOST_TEST(!data_as<shop::order_created>(e, ec, &why).has_value());
    BOOST_TEST(why.find("something.else") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(attributes_with_quotes_backslashes_and_controls_round_trip)
{
    // serialize() writes the JSON itself: what JSON must escape is escaped.
    auto e = make_envelope("/plugins/\"q\"", "t\\x\n\x01y", R"(a\b)", boost::json::value("d\"\n"));
    e.correlationid = std::string("nul\0inside", 10);
    const auto text = serialize(e);
    boost::system::error_code jec;
    (void)boost::json::parse(text, jec);
    BOOST_TEST(!jec, text);
    std::error_code ec;
    const auto back = parse_envelope(text, ec);
    BOOST_REQUIRE(!ec);
    BOOST_TEST(back.source == e.source);
    BOOST_TEST(back.type == e.type);
    BOOST_TEST(back.subject == e.subject);
    BOOST_TEST(back.correlationid == e.correlationid);
    BOOST_TEST(back.data.as_string() == "d\"\n");
    BOOST_TEST(back.time == e.time);
    BOOST_TEST(back.id == e.id);
}
