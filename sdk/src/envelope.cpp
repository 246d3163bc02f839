#include "slotbus/envelope.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace slotbus {
namespace json = boost::json;

namespace {

// "2026-11-22T05:07:49.606398Z". The date and time part changes once a second:
// it is formatted then, and only the microseconds every time.
std::string now_rfc3339()
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
    std::string text(cached, 19);
    text.resize(19 + 8);
    text[19] = '.';
    for (int i = 25, left = micros; i >= 20; --i, left /= 10)
        text[static_cast<std::size_t>(i)] = static_cast<char>('0' + left % 10);
    text[26] = 'Z';
    return text;
}

// Appends s as a JSON string: quoted, with what JSON requires escaped.
void append_json_string(std::string& out, std::string_view s)
{
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

} // namespace

std::string next_event_id()
{
    static const std::string prefix = [] {
        char text[17];
        std::snprintf(text, sizeof text, "%016llx",
                      static_cast<unsigned long long>(std::random_device{}()) << 32 |
                          std::random_device{}());
        return std::string(text) + "-";
    }();
    static std::atomic<std::uint64_t> counter{0};
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, ++counter).ptr;
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
        out += json::serialize(e.data);
    }
    attribute("replyto", e.replyto, false);
    attribute("correlationid", e.correlationid, false);
    out += '}';
    return out;
}

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

const json::value* parse_envelope_into(std::string_view text, envelope& e, json::value& document,
                                       std::error_code& ec, std::string* why)
{
    auto fail = [&](std::string reason) -> const json::value* {
        ec = error::invalid_data;
        if (why)
            *why = std::move(reason);
        return nullptr;
    };
    boost::system::error_code jec;
    const auto& v = document = json::parse(text, jec, document.storage());
    if (jec)
        return fail("not JSON: " + jec.message());
    const json::object* o = v.if_object();
    if (!o)
        return fail("not a JSON object");
    // Required string attributes first, then optional ones.
    struct attribute {
        const char* name;
        std::string envelope::*field;
        bool required;
    };
    static constexpr attribute attributes[] = {
        {"specversion", &envelope::specversion, true},
        {"id", &envelope::id, true},
        {"source", &envelope::source, true},
        {"type", &envelope::type, true},
        {"time", &envelope::time, false},
        {"subject", &envelope::subject, false},
        {"datacontenttype", &envelope::datacontenttype, false},
        {"replyto", &envelope::replyto, false},
        {"correlationid", &envelope::correlationid, false},
    };
    for (const auto& a : attributes) {
        const json::value* found = o->if_contains(a.name);
        if (!found) {
            if (a.required)
                return fail(std::string("missing attribute ") + a.name);
            (e.*a.field).clear();
            continue;
        }
        const json::string* s = found->if_string();
        if (!s || (a.required && s->empty()))
            return fail(std::string("attribute ") + a.name + " is not a non-empty string");
        (e.*a.field).assign(s->data(), s->size()); // reuses what the default holds
    }
    if (e.specversion != "1.0")
        return fail("specversion " + e.specversion + " is not 1.0");
    e.data = nullptr;
    ec.clear();
    return o->if_contains("data");
}

} // namespace detail

} // namespace slotbus
