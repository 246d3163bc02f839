#include "slotbus/envelope.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <utility>

namespace slotbus {
namespace json = boost::json;
using detail::append_json;
using detail::append_json_string;

namespace {

// "2026-11-22T05:07:49.606398Z". The date and time part changes once a second:
// it is formatted then, and only the microseconds every time.
constexpr std::size_t rfc3339_size = 27;
void write_now_rfc3339(char* text)
{
    const auto now = std::chrono::system_clock::now();
    const auto seconds = std::chrono::system_clock::to_time_t(now);
    const auto micros = static_cast<int>(
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
        1000000);
    thread_local std::time_t cached_second = -1;
    thread_local char cached[64]; // "2026-11-22T05:07:49"
    if (seconds != cached_second) {
        std::tm utc{};
        ::gmtime_r(&seconds, &utc);
        std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &utc);
        cached_second = seconds;
    }
    std::memcpy(text, cached, 19);
    text[19] = '.';
    for (int i = 25, left = micros; i >= 20; --i, left /= 10)
        text[i] = static_cast<char>('0' + left % 10);
    text[26] = 'Z';
}

std::string now_rfc3339()
{
    std::string text(rfc3339_size, '\0');
    write_now_rfc3339(text.data());
    return text;
}

// The event id: the process's random prefix and a counter.
const std::string& event_id_prefix()
{
    static const std::string prefix = [] {
        char text[17];
        std::snprintf(text, sizeof text, "%016llx",
                      static_cast<unsigned long long>(std::random_device{}()) << 32 |
                          std::random_device{}());
        return std::string(text) + "-";
    }();
    return prefix;
}
std::atomic<std::uint64_t> event_counter{0};

} // namespace

std::string next_event_id()
{
    const auto& prefix = event_id_prefix();
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, ++event_counter).ptr;
    std::string id;
    id.reserve(prefix.size() + static_cast<std::size_t>(end - digits));
    id.append(prefix).append(digits, end);
    return id;
}

envelope make_envelope(std::string_view source, std::string_view type, std::string_view subject,
                       boost::json::value data)
{
    envelope e;
    e.id = next_event_id();
    e.source = source;
    e.type = type;
    e.time = now_rfc3339();
    e.subject = subject;
    e.data = std::move(data);
    return e;
}

std::string serialize(const envelope& e)
{
    // Written directly, attribute by attribute: building a json::object first
    // cost an allocation per attribute and a copy of `data`.
    std::string out;
    out.reserve(192 + e.id.size() + e.source.size() + e.type.size() + e.subject.size());
    auto attribute = [&](const char* name, const std::string& value, bool always) {
        if (value.empty() && !always)
            return;
        out += out.empty() ? "{\"" : ",\"";
        out += name;
        out += "\":";
        append_json_string(out, value);
    };
    attribute("specversion", e.specversion, true);
    attribute("id", e.id, true);
    attribute("source", e.source, true);
    attribute("type", e.type, true);
    attribute("time", e.time, false);
    attribute("subject", e.subject, false);
    attribute("datacontenttype", e.datacontenttype, false);
    if (!e.data.is_null()) {
        out += ",\"data\":";
        append_json(out, e.data);
    }
    attribute("replyto", e.replyto, false);
    attribute("correlationid", e.correlationid, false);
    out += '}';
    return out;
}

namespace detail {

void begin_new_event(std::string& out, std::string_view source, std::string_view type,
                     std::string_view subject)
{
    // As serialize(make_envelope(...)) writes it, attribute for attribute.
    out.reserve(out.size() + 256 + source.size() + type.size() + subject.size());
    out += R"({"specversion":"1.0","id":")";
    out += event_id_prefix();
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof digits, ++event_counter).ptr);
    out += R"(","source":)";
    append_json_string(out, source);
    out += R"(,"type":)";
    append_json_string(out, type);
    out += R"(,"time":")";
    char time[rfc3339_size];
    write_now_rfc3339(time);
    out.append(time, sizeof time);
    out += '"';
    if (!subject.empty()) {
        out += R"(,"subject":)";
        append_json_string(out, subject);
    }
    // No datacontenttype: JSON is what CloudEvents assumes without one
    // (parse_envelope reads it so), and every record is 34 bytes shorter.
    out += R"(,"data":)";
}

} // namespace detail

envelope parse_envelope(std::string_view text, std::error_code& ec, std::string* why)
{
    // Parsed into a stack buffer (no allocation per key and string for a
    // typical envelope); what the envelope keeps is copied out of it.
    unsigned char scratch[4096];
    json::monotonic_resource parse_memory(scratch, sizeof scratch);
    json::value document(&parse_memory);
    envelope e;
    const json::value* data = detail::parse_envelope_into(text, e, document, ec, why);
    if (ec)
        return envelope{};
    if (data)
        e.data = json::value(*data, json::storage_ptr()); // out of the scratch buffer
    return e;
}

namespace detail {

// Appends s as a JSON string: quoted, with what JSON requires escaped.
void append_json_string(std::string& out, std::string_view s)
{
    const auto needs_escape = [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == '"' || u == '\\';
    };
    if (std::none_of(s.begin(), s.end(), needs_escape)) { // the usual string: one copy
        const auto at = out.size();
        out.resize(at + s.size() + 2);
        char* to = out.data() + at;
        to[0] = '"';
        std::copy(s.begin(), s.end(), to + 1);
        to[s.size() + 1] = '"';
        return;
    }
    out += '"';
    std::size_t run = 0; // characters that need no escaping go in runs
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u >= 0x20 && u != '"' && u != '\\')
            continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        if (u == '"' || u == '\\') {
            out += '\\';
            out += static_cast<char>(u);
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

// Written here rather than by boost::json::serialize: numbers as people
// write them (101.25, where Boost.JSON 1.81 writes 1.0125E2), no string of
// its own.
void append_json(std::string& out, const json::value& v)
{
    switch (v.kind()) {
    case json::kind::null:
        out += "null";
        return;
    case json::kind::bool_:
        out += v.get_bool() ? "true" : "false";
        return;
    case json::kind::int64:
    case json::kind::uint64: {
        char digits[24];
        const auto end = v.is_int64()
                             ? std::to_chars(digits, digits + sizeof digits, v.get_int64()).ptr
                             : std::to_chars(digits, digits + sizeof digits, v.get_uint64()).ptr;
        out.append(digits, end);
        return;
    }
    case json::kind::double_:
        append_json_number(out, v.get_double());
        return;
    case json::kind::string:
        append_json_string(out, v.get_string());
        return;
    case json::kind::array: {
        out += '[';
        bool first = true;
        for (const auto& e : v.get_array()) {
            if (!std::exchange(first, false))
                out += ',';
            append_json(out, e);
        }
        out += ']';
        return;
    }
    case json::kind::object: {
        out += '{';
        bool first = true;
        for (const auto& [key, e] : v.get_object()) {
            if (!std::exchange(first, false))
                out += ',';
            append_json_string(out, key);
            out += ':';
            append_json(out, e);
        }
        out += '}';
        return;
    }
    }
}

void append_json_number(std::string& out, double d)
{
    if (!std::isfinite(d)) { // JSON has no such number; Boost.JSON writes these as null too
        out += "null";
        return;
    }
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, d).ptr;
    out.append(text, end);
    // Shortest form writes 1.0 as "1", which reads back as an integer; keep
    // it a number with a fraction so a round trip keeps the value's kind.
    if (std::find_if(text, end, [](char c) { return c == '.' || c == 'e'; }) == end)
        out += ".0";
}

std::string_view kind_of(const json::value& v)
{
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
        return "an integer";
    case json::kind::double_:
        return "a number";
    case json::kind::string:
        return "a string";
    case json::kind::array:
        return "an array";
    case json::kind::object:
        return "an object";
    }
    return "?";
}

namespace {

// The envelope's attributes: required string ones first, then optional ones.
// A required one is never empty; nor is datacontenttype when present (an
// empty string is no media type, and serialize, which leaves an empty one
// out, would turn it into the default on the way back).
struct attribute {
    std::string_view name;
    std::string envelope::*field;
    bool required;
    bool non_empty;
};
constexpr attribute attributes[] = {
    {"specversion", &envelope::specversion, true, true},
    {"id", &envelope::id, true, true},
    {"source", &envelope::source, true, true},
    {"type", &envelope::type, true, true},
    {"time", &envelope::time, false, false},
    {"subject", &envelope::subject, false, false},
    {"datacontenttype", &envelope::datacontenttype, false, true},
    {"replyto", &envelope::replyto, false, false},
    {"correlationid", &envelope::correlationid, false, false},
};
constexpr std::size_t attribute_count = std::size(attributes);

// Parse events of an envelope, handled as they come: attributes go straight
// into the envelope's strings, only `data` becomes a JSON tree, other members
// (extensions) are skipped. Building the whole document as a tree first cost
// more than twice the parse itself.
class envelope_handler {
public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    envelope_handler(envelope& e, const json::storage_ptr& storage, unsigned char* temp,
                     std::size_t temp_size)
        : e_(e), data_(json::storage_ptr(), temp, temp_size)
    {
        data_.reset(storage);
    }

    std::string why;                  // set when a handler stops the parse
    bool found[attribute_count] = {}; // attributes seen
    bool has_data = false;
    json::value release_data() { return data_.release(); }

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_object_begin(json::error_code& ec)
    {
        if (depth_++ == 0)
            return true; // the envelope
        return begin_nested(ec);
    }
    bool on_object_end(std::size_t n, json::error_code& ec)
    {
        if (--depth_ == 0)
            return true;
        if (in_data()) {
            data_.push_object(n);
            --data_depth_;
        }
        return end_value(ec);
    }
    bool on_array_begin(json::error_code& ec)
    {
        if (depth_++ == 0)
            return fail(ec, "not a JSON object");
        return begin_nested(ec);
    }
    bool on_array_end(std::size_t n, json::error_code& ec)
    {
        --depth_;
        if (in_data()) {
            data_.push_array(n);
            --data_depth_;
        }
        return end_value(ec);
    }
    bool on_key_part(json::string_view s, std::size_t, json::error_code&)
    {
        if (depth_ == 1)
            key_.append(s.data(), s.size());
        else if (in_data())
            data_.push_chars(s);
        return true;
    }
    bool on_key(json::string_view s, std::size_t, json::error_code& ec)
    {
        if (depth_ != 1) {
            if (in_data())
                data_.push_key(s);
            return true;
        }
        if (key_.empty()) // the whole key at once, as it mostly comes: no copy
            return start_member(std::string_view(s.data(), s.size()), ec);
        key_.append(s.data(), s.size());
        const bool ok = start_member(key_, ec);
        key_.clear();
        return ok;
    }
    bool on_string_part(json::string_view s, std::size_t, json::error_code&)
    {
        if (in_data())
            data_.push_chars(s);
        else if (target_)
            target_->append(s.data(), s.size());
        return true;
    }
    bool on_string(json::string_view s, std::size_t, json::error_code& ec)
    {
        if (depth_ == 0)
            return fail(ec, "not a JSON object");
        if (in_data()) {
            data_.push_string(s);
            return end_value(ec);
        }
        if (target_) {
            target_->append(s.data(), s.size());
            if (attributes[attribute_].non_empty && target_->empty())
                return fail(ec, std::string("attribute ") +
                                    std::string(attributes[attribute_].name) +
                                    " is not a non-empty string");
            target_ = nullptr;
        }
        return true;
    }
    bool on_number_part(json::string_view s, json::error_code&)
    {
        number_.append(s.data(), s.size());
        return true;
    }
    bool on_int64(std::int64_t v, json::string_view, json::error_code& ec)
    {
        number_.clear();
        return scalar(ec, [&] { data_.push_int64(v); });
    }
    bool on_uint64(std::uint64_t v, json::string_view, json::error_code& ec)
    {
        number_.clear();
        return scalar(ec, [&] { data_.push_uint64(v); });
    }
    // Boost.JSON 1.81 rounds long decimals imprecisely (one bit off at
    // times), so a number written in its shortest form did not always read
    // back as itself; from_chars rounds correctly.
    bool on_double(double v, json::string_view s, json::error_code& ec)
    {
        std::string_view text(s.data(), s.size());
        if (!number_.empty())
            text = number_.append(text);
        double exact = 0;
        const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), exact);
        if (err == std::errc{} && end == text.data() + text.size())
            v = exact;
        // Too large for a double (1e5563): no value would read back as it
        // was written (infinity has no JSON), so the event is refused. Too
        // small is Boost's 0, as JSON readers take it.
        if (!std::isfinite(v)) {
            const std::string said(text.substr(0, 40));
            number_.clear();
            return fail(ec, "a number too large for a double: " + said);
        }
        number_.clear();
        return scalar(ec, [&] { data_.push_double(v); });
    }
    bool on_bool(bool v, json::error_code& ec)
    {
        return scalar(ec, [&] { data_.push_bool(v); });
    }
    bool on_null(json::error_code& ec)
    {
        return scalar(ec, [&] { data_.push_null(); });
    }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }

private:
    [[nodiscard]] bool in_data() const { return data_depth_ != 0; }

    bool fail(json::error_code& ec, std::string reason)
    {
        why = std::move(reason);
        ec = json::error::syntax; // stops the parse; `why` says what was wrong
        return false;
    }
    // A top-level member's key is complete: what is its value for?
    bool start_member(std::string_view key, json::error_code& ec)
    {
        if (key == "data") {
            if (std::exchange(has_data, true))
                return fail(ec, "member data appears twice");
            data_depth_ = 1; // the next value, whatever it is, is the data
            return true;
        }
        for (std::size_t i = 0; i < attribute_count; ++i) {
            if (key != attributes[i].name)
                continue;
            if (std::exchange(found[i], true))
                return fail(ec, "attribute " + std::string(key) + " appears twice");
            attribute_ = i;
            target_ = &(e_.*attributes[i].field);
            target_->clear(); // keeps its storage for the new value
            break;
        }
        return true;
    }
    // An object or array starts below the envelope.
    bool begin_nested(json::error_code& ec)
    {
        if (target_)
            return fail(ec, std::string("attribute ") + std::string(attributes[attribute_].name) +
                                " is not a non-empty string");
        if (in_data())
            ++data_depth_;
        return true;
    }
    // A value below the envelope is complete: if it is the data itself, the
    // data is done.
    bool end_value(json::error_code&)
    {
        if (data_depth_ == 1)
            data_depth_ = 0;
        return true;
    }
    template <class Push> bool scalar(json::error_code& ec, Push push)
    {
        if (depth_ == 0)
            return fail(ec, "not a JSON object");
        if (in_data()) {
            push();
            return end_value(ec);
        }
        if (target_)
            return fail(ec, std::string("attribute ") + std::string(attributes[attribute_].name) +
                                " is not a non-empty string");
        return true;
    }

    envelope& e_;
    json::value_stack data_;
    int depth_ = 0;                 // objects and arrays open
    int data_depth_ = 0;            // in data: 1 + its objects and arrays open; else 0
    std::string key_;               // a top-level key, while it comes in parts
    std::string number_;            // a number, while it comes in parts
    std::string* target_ = nullptr; // the attribute whose string comes next
    std::size_t attribute_ = 0;     // which one
};

} // namespace

const json::value* parse_envelope_into(std::string_view text, envelope& e, json::value& document,
                                       std::error_code& ec, std::string* why)
{
    auto fail = [&](std::string reason) -> const json::value* {
        ec = error::invalid_data;
        if (why)
            *why = std::move(reason);
        return nullptr;
    };
    unsigned char temp[1024]; // the data tree's build stack, for a typical event
    json::basic_parser<envelope_handler> parser(json::parse_options{}, e, document.storage(), temp,
                                                sizeof temp);
    boost::system::error_code jec;
    const auto used = parser.write_some(false, text.data(), text.size(), jec);
    auto& h = parser.handler();
    if (!jec && used != text.size())
        jec = json::error::extra_data;
    if (jec)
        return fail(!h.why.empty() ? h.why : "not JSON: " + jec.message());
    for (std::size_t i = 0; i < attribute_count; ++i) {
        if (h.found[i])
            continue;
        if (attributes[i].required)
            return fail("missing attribute " + std::string(attributes[i].name));
        if (attributes[i].field == &envelope::datacontenttype)
            e.datacontenttype = "application/json"; // CloudEvents' default for the JSON format
        else
            (e.*attributes[i].field).clear();
    }
    if (e.specversion != "1.0")
        return fail("specversion " + e.specversion + " is not 1.0");
    e.data = nullptr;
    ec.clear();
    if (!h.has_data)
        return nullptr;
    document = h.release_data();
    return &document;
}

} // namespace detail

std::string json_text(const json::value& v)
{
    std::string out;
    detail::append_json(out, v);
    return out;
}

} // namespace slotbus
