#define BOOST_TEST_MODULE envelope
#include "order.hpp" // the orders sample's event: shop::order_created

#include "slotbus/detail/recent_keys.hpp"
#include "slotbus/envelope.hpp"

#include <boost/describe/class.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <deque>
#include <random>
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
    BOOST_TEST(why == "field order_id: expected a string, got an integer");
    e.type = "something.else";
    BOOST_TEST(!data_as<shop::order_created>(e, ec, &why).has_value());
    BOOST_TEST(why.find("something.else") != std::string::npos);
}

// docs/envelopes.md, "Schema evolution": an older or newer publisher's data converts.
BOOST_AUTO_TEST_CASE(unknown_fields_are_ignored_and_absent_ones_take_the_defaults)
{
    std::string why;
    // A newer publisher: a field this subscriber does not know.
    auto newer = from_data<shop::order_created>(
        boost::json::parse(R"({"order_id":"A-1","amount":2.5,"currency":"EUR","items":1,)"
                           R"("express":true,"gift_wrap":{"colour":"red"}})"),
        &why);
    BOOST_TEST_REQUIRE(newer.has_value(), why);
    BOOST_TEST(newer->order_id == "A-1");
    BOOST_TEST(newer->items == 1);
    // An older one: fields left out keep the struct's defaults.
    auto older = from_data<shop::order_created>(boost::json::parse(R"({"order_id":"A-2"})"), &why);
    BOOST_TEST_REQUIRE(older.has_value(), why);
    BOOST_TEST(older->order_id == "A-2");
    BOOST_TEST(older->amount == 0);
    BOOST_TEST(older->currency.empty());
    BOOST_TEST(!older->express);
    // An optional member: absent and null are both empty; a value fills it.
    auto absent = from_data<shop::basket_updated>(boost::json::parse(R"({"basket":"b"})"), &why);
    BOOST_TEST_REQUIRE(absent.has_value(), why);
    BOOST_TEST(!absent->coupon.has_value());
    BOOST_TEST(absent->lines.empty());
    auto null = from_data<shop::basket_updated>(
        boost::json::parse(R"({"basket":"b","coupon":null,"lines":[{"sku":"x"}]})"), &why);
    BOOST_TEST_REQUIRE(null.has_value(), why);
    BOOST_TEST(!null->coupon.has_value());
    BOOST_TEST_REQUIRE(null->lines.size() == 1u);
    BOOST_TEST(null->lines[0].quantity == 0); // nested structs evolve the same way
    auto given = from_data<shop::basket_updated>(boost::json::parse(R"({"coupon":"SAVE5"})"), &why);
    BOOST_TEST_REQUIRE(given.has_value(), why);
    BOOST_TEST(given->coupon.value_or("") == "SAVE5");
    // Members in another order than the struct's, unknown ones between.
    auto reordered = from_data<shop::basket_updated>(
        boost::json::parse(
            R"({"coupon":"C","x":1,"lines":[{"quantity":2,"sku":"s"}],"basket":"b"})"),
        &why);
    BOOST_TEST_REQUIRE(reordered.has_value(), why);
    BOOST_TEST(reordered->basket == "b");
    BOOST_TEST(reordered->coupon.value_or("") == "C");
    BOOST_TEST_REQUIRE(reordered->lines.size() == 1u);
    BOOST_TEST((reordered->lines[0] == shop::line{"s", 2}));
}

BOOST_AUTO_TEST_CASE(a_conversion_error_names_the_field_and_the_expected_type)
{
    auto why_of = [](std::string_view data) {
        std::string why;
        BOOST_TEST(!from_data<shop::basket_updated>(boost::json::parse(data), &why).has_value());
        return why;
    };
    BOOST_TEST(why_of(R"({"basket":7})") == "field basket: expected a string, got an integer");
    BOOST_TEST(why_of(R"({"lines":{}})") == "field lines: expected an array, got an object");
    BOOST_TEST(why_of(R"({"lines":[{"sku":"a"},{"sku":"b","quantity":"2"}]})") ==
               "field lines[1].quantity: expected an integer, got a string");
    BOOST_TEST(why_of(R"({"coupon":false})") == "field coupon: expected a string, got a boolean");
    BOOST_TEST(why_of(R"([1,2])") == "data: expected an object, got an array");
    BOOST_TEST(why_of(R"({"lines":[{"quantity":1.5}]})") ==
               "field lines[0].quantity: expected an integer, got a number");
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

// The subscriber's duplicate check: exactly the last N keys, against a plain
// model, through enough keys (and colliding table slots) to wrap many times.
BOOST_AUTO_TEST_CASE(recent_keys_remembers_exactly_the_last_n)
{
    for (const std::size_t capacity : {1u, 3u, 64u, 1000u}) {
        detail::recent_keys keys(capacity);
        std::deque<std::string> order;
        std::set<std::string> model;
        std::mt19937 random(static_cast<unsigned>(capacity));
        for (int i = 0; i < 20000; ++i) {
            // Few distinct ids, so repeats inside and outside the window both happen.
            const auto id = std::to_string(random() % (3 * capacity + 2));
            const auto key = "/plugins/p\n" + id;
            const bool expected = model.count(key) != 0;
            BOOST_TEST_REQUIRE(keys.seen_before("/plugins/p", id) == expected,
                               "capacity " << capacity << ", key " << id << ", step " << i);
            if (expected)
                continue;
            order.push_back(key);
            model.insert(key);
            if (order.size() > capacity) {
                model.erase(order.front());
                order.pop_front();
            }
        }
    }
}

// The envelope is parsed as events (only `data` becomes a tree): every shape
// of data, extensions of every shape, and what must still be refused.
BOOST_AUTO_TEST_CASE(data_of_every_shape_and_extensions_of_every_shape_parse)
{
    const std::string head =
        R"({"specversion":"1.0","id":"1","source":"/s","type":"t","ext":{"a":[1,{"b":"x"}]},)";
    for (const std::string data :
         {R"(5)", R"("text")", R"(null)", R"(true)", R"(-1.5)", R"([])", R"({})",
          R"([1,"two",{"three":[3,{"four":null}]}])", R"({"a":{"b":{"c":[1,2,{"d":"e"}]}}})",
          R"(18446744073709551615)"}) {
        std::error_code ec;
        std::string why;
        const auto text = head + R"("data":)" + data + R"(,"more":[["x"]],"time":"now"} )";
        auto e = parse_envelope(text, ec, &why);
        BOOST_TEST_REQUIRE(!ec, data << ": " << why);
        BOOST_TEST(e.data == boost::json::parse(data), data);
        BOOST_TEST(e.time == "now");
        BOOST_TEST(e.type == "t");
    }
    for (const std::string bad :
         {R"({"specversion":"1.0","id":"1","source":"/s","type":"t","type":"u"})",
          R"({"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data":2})",
          R"({"specversion":"1.0","id":{"x":1},"source":"/s","type":"t"})",
          R"({"specversion":"1.0","id":["1"],"source":"/s","type":"t"})",
          R"({"specversion":"1.0","id":"1","source":"/s","type":"t"} {})", R"("a string")",
          R"(17)"}) {
        std::error_code ec;
        std::string why;
        (void)parse_envelope(bad, ec, &why);
        BOOST_TEST((ec == error::invalid_data), bad);
        BOOST_TEST(!why.empty(), bad);
    }
}

BOOST_AUTO_TEST_CASE(data_is_written_as_value_from_would_and_reads_back)
{
    // append_data writes described structs itself: the same JSON as value_from.
    const shop::basket_updated basket{"b\"1", {{"x", 1}, {"y\n", -2}}, std::string("SAVE5")};
    std::string out;
    detail::append_data(out, basket);
    BOOST_TEST(boost::json::parse(out) == boost::json::value_from(basket));
    const shop::order_created order{"A", 101.25, "EUR", 3, true};
    out.clear();
    detail::append_data(out, order);
    BOOST_TEST(out ==
               R"({"order_id":"A","amount":101.25,"currency":"EUR","items":3,"express":true})");
    // A new event leaves datacontenttype out (JSON is CloudEvents' default)
    // and reads back with it.
    std::string record;
    detail::begin_new_event(record, "/plugins/shop", "orders.created", "events\\orders");
    detail::append_data(record, order);
    record += '}';
    BOOST_TEST(!boost::json::parse(record).as_object().contains("datacontenttype"));
    std::error_code ec;
    const auto e = parse_envelope(record, ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(e.datacontenttype == "application/json");
    BOOST_TEST(e.subject == "events\\orders");
    BOOST_TEST(data_as<shop::order_created>(e, ec)->amount == 101.25);
    const shop::basket_updated empty{};
    out.clear();
    detail::append_data(out, empty);
    BOOST_TEST(out == R"({"basket":"","lines":[],"coupon":null})");
}

BOOST_AUTO_TEST_CASE(a_whole_double_stays_a_double_through_a_round_trip)
{
    // Found by fuzz_envelope: 1.0 written as "1" read back as an integer, so
    // the envelope that came back was not the one that went out.
    std::error_code ec;
    const auto e = parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1.0,"b":-0.0,"c":1e22,"d":2}})",
        ec);
    BOOST_TEST_REQUIRE(!ec);
    const auto text = serialize(e);
    BOOST_TEST(text.find(R"("data":{"a":1.0,"b":-0.0,"c":1e+22,"d":2})") != std::string::npos,
               text);
    const auto back = parse_envelope(text, ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(back.data == e.data);
    BOOST_TEST(back.data.at("a").is_double());
    BOOST_TEST(back.data.at("d").is_int64());

    // Doubles are rounded correctly, so the shortest form written reads back
    // as the same double (Boost.JSON 1.81's parser is one bit off on these).
    const std::string digits(110, '5');
    const auto huge = parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/s","type":"t","data":)" + digits + "3}", ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(huge.data.is_double());
    BOOST_TEST(huge.data.get_double() == std::stod(digits + "3"));
    BOOST_TEST(parse_envelope(serialize(huge), ec).data == huge.data);

    // Found by fuzz_envelope too: a number too large for a double has no
    // value to read back as (infinity is not JSON), so the event is refused;
    // one too small is 0.
    std::string why;
    parse_envelope(R"({"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":5e5563}})",
                   ec, &why);
    BOOST_TEST((ec == error::invalid_data));
    BOOST_TEST(why == "a number too large for a double: 5e5563", why);
    const auto tiny = parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1e-400}})", ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(tiny.data.at("n").as_double() == 0.0);
}

BOOST_AUTO_TEST_CASE(an_empty_datacontenttype_is_refused)
{
    // Found by fuzz_envelope: "" is no media type, and serialize leaves an
    // empty one out, so it came back as the default application/json.
    std::error_code ec;
    std::string why;
    parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":""})", ec,
        &why);
    BOOST_TEST((ec == error::invalid_data));
    BOOST_TEST(why == "attribute datacontenttype is not a non-empty string", why);
    // Empty optional attributes without a default stay accepted: they read
    // back as absent, which is the same empty string.
    const auto e = parse_envelope(
        R"({"specversion":"1.0","id":"1","source":"/s","type":"t","subject":""})", ec);
    BOOST_TEST_REQUIRE(!ec);
    BOOST_TEST(parse_envelope(serialize(e), ec).subject == "");
}
