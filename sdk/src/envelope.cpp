#include "slotbus/envelope.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace slotbus {
namespace json = boost::json;

namespace {

std::string now_rfc3339()
{
    const auto now = std::chrono::system_clock::now();
    const auto seconds = std::chrono::system_clock::to_time_t(now);
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
        1000000;
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<long long>(micros));
    return text;
}

} // namespace

std::string next_event_id()
{
    static const std::string prefix = [] {
        char text[17];
        std::snprintf(text, sizeof text, "%016llx",
                      static_cast<unsigned long long>(std::random_device{}()) << 32 |
                          std::random_device{}());
        return std::string(text);
    }();
    static std::atomic<std::uint64_t> counter{0};
    return prefix + "-" + std::to_string(++counter);
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
    json::object o;
    o["specversion"] = e.specversion;
    o["id"] = e.id;
    o["source"] = e.source;
    o["type"] = e.type;
    if (!e.time.empty())
        o["time"] = e.time;
    if (!e.subject.empty())
        o["subject"] = e.subject;
    if (!e.datacontenttype.empty())
        o["datacontenttype"] = e.datacontenttype;
    if (!e.data.is_null())
        o["data"] = e.data;
    if (!e.replyto.empty())
        o["replyto"] = e.replyto;
    if (!e.correlationid.empty())
        o["correlationid"] = e.correlationid;
    return json::serialize(o);
}

envelope parse_envelope(std::string_view text, std::error_code& ec, std::string* why)
{
    auto fail = [&](std::string reason) {
        ec = error::invalid_data;
        if (why)
            *why = std::move(reason);
        return envelope{};
    };
    boost::system::error_code jec;
    json::value v = json::parse(text, jec);
    if (jec)
        return fail("not JSON: " + jec.message());
    const json::object* o = v.if_object();
    if (!o)
        return fail("not a JSON object");
    envelope e;
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
        e.*a.field = std::string(*s);
    }
    if (e.specversion != "1.0")
        return fail("specversion " + e.specversion + " is not 1.0");
    if (const json::value* data = o->if_contains("data"))
        e.data = *data;
    ec.clear();
    return e;
}

} // namespace slotbus
