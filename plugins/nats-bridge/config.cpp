#include "config.hpp"

#include "subjects.hpp"

#include <boost/json/parse.hpp>

#include <fstream>
#include <set>
#include <sstream>

namespace slotbus::bridge {

namespace json = boost::json;

namespace {

/// Reads one object's members, refusing those it does not know (a typo is
/// an error, not a silent default).
class reader {
public:
    reader(const json::value& v, std::string where, std::string& why)
        : where_(std::move(where)), why_(why)
    {
        if (!v.is_object())
            fail("must be an object");
        else
            object_ = &v.as_object();
    }
    bool ok() const { return why_.empty(); }
    bool fail(const std::string& what)
    {
        if (why_.empty())
            why_ = where_ + ": " + what;
        return false;
    }
    const json::value* get(std::string_view key)
    {
        known_.insert(std::string(key));
        return object_ ? object_->if_contains(key) : nullptr;
    }
    void text(std::string_view key, std::string& out)
    {
        if (const auto* v = get(key)) {
            if (!v->is_string())
                fail(std::string(key) + " must be a string");
            else
                out = std::string(v->as_string());
        }
    }
    void path(std::string_view key, std::filesystem::path& out)
    {
        std::string s;
        text(key, s);
        if (!s.empty())
            out = s;
    }
    template <class T>
    void number(std::string_view key, T& out, std::uint64_t min, std::uint64_t max)
    {
        if (const auto* v = get(key)) {
            if (!v->is_int64() || v->as_int64() < static_cast<std::int64_t>(min) ||
                static_cast<std::uint64_t>(v->as_int64()) > max)
                fail(std::string(key) + " must be a whole number from " + std::to_string(min) +
                     " to " + std::to_string(max));
            else
                out = static_cast<T>(v->as_int64());
        }
    }
    void ms(std::string_view key, std::chrono::milliseconds& out, std::uint64_t min,
            std::uint64_t max)
    {
        auto n = static_cast<std::uint64_t>(out.count());
        number(key, n, min, max);
        out = std::chrono::milliseconds(n);
    }
    const json::array* array(std::string_view key)
    {
        const auto* v = get(key);
        if (v && !v->is_array()) {
            fail(std::string(key) + " must be an array");
            return nullptr;
        }
        return v ? &v->as_array() : nullptr;
    }
    void strings(std::string_view key, std::vector<std::string>& out)
    {
        if (const auto* a = array(key))
            for (const auto& v : *a) {
                if (!v.is_string()) {
                    fail(std::string(key) + " must hold strings");
                    return;
                }
                out.emplace_back(v.as_string());
            }
    }
    void mode(route_mode& out)
    {
        std::string m = "core";
        text("mode", m);
        if (m == "jetstream")
            out = route_mode::jetstream;
        else if (m != "core")
            fail("mode must be \"core\" or \"jetstream\", not \"" + m + "\"");
    }
    /// After the members were read: any other is a mistake.
    bool done()
    {
        if (object_)
            for (const auto& member : *object_)
                if (!known_.contains(std::string(member.key())))
                    return fail("unknown member \"" + std::string(member.key()) + "\"");
        return ok();
    }

private:
    std::string where_;
    std::string& why_;
    const json::object* object_ = nullptr;
    std::set<std::string> known_;
};

/// A stream or durable name: NATS refuses `.`, `*`, `>`, white space.
bool nats_name(std::string_view name)
{
    return !name.empty() && name.size() <= 200 &&
           name.find_first_of(".*> \t\r\n\\/") == std::string_view::npos;
}

} // namespace

std::optional<bridge_config> parse_config(std::string_view text, std::string& why)
{
    boost::system::error_code ec;
    const auto document = json::parse(text, ec);
    if (ec) {
        why = "not JSON: " + ec.message();
        return std::nullopt;
    }
    bridge_config c;
    reader top(document, "the config", why);
    top.strings("servers", c.servers);
    top.text("origin", c.origin);
    if (const auto* auth = top.get("auth")) {
        reader r(*auth, "auth", why);
        r.text("user", c.user);
        r.text("password", c.password);
        r.text("token", c.token);
        r.path("creds", c.creds_file);
        r.path("nkey_seed", c.nkey_seed_file);
        r.text("nkey_public", c.nkey_public);
        const int ways =
            !c.user.empty() + !c.token.empty() + !c.creds_file.empty() + !c.nkey_seed_file.empty();
        if (ways > 1)
            r.fail("give one of user and password, token, creds or nkey_seed");
        if (!c.nkey_seed_file.empty() && c.nkey_public.empty())
            r.fail("nkey_seed needs nkey_public (the user's public nkey)");
        r.done();
    }
    if (const auto* tls = top.get("tls")) {
        reader r(*tls, "tls", why);
        c.tls = true;
        r.path("ca", c.tls_ca);
        r.path("cert", c.tls_cert);
        r.path("key", c.tls_key);
        if (c.tls_cert.empty() != c.tls_key.empty())
            r.fail("cert and key go together");
        r.done();
    }
    top.ms("reconnect_wait_ms", c.reconnect_wait, 10, 60'000);
    top.ms("reconnect_jitter_ms", c.reconnect_jitter, 0, 60'000);
    top.number("publish_window", c.publish_window, 1, 65'536);
    top.number("core_pending", c.core_pending, 16, 1u << 24);
    top.ms("ack_wait_ms", c.ack_wait, 100, 3'600'000);
    top.ms("status_interval_ms", c.status_interval, 100, 3'600'000);
    if (const auto* streams = top.array("streams"))
        for (std::size_t i = 0; i < streams->size() && why.empty(); ++i) {
            reader r((*streams)[i], "streams[" + std::to_string(i) + "]", why);
            stream_config s;
            r.text("name", s.name);
            r.strings("subjects", s.subjects);
            if (!nats_name(s.name))
                r.fail("name must be a NATS stream name (no '.', '*', '>' or white space)");
            for (const auto& subject : s.subjects)
                if (std::string bad; !checked_subject_pattern(subject, bad))
                    r.fail("subjects: " + bad);
            if (s.subjects.empty())
                r.fail("subjects must name at least one subject");
            if (r.done())
                c.streams.push_back(std::move(s));
        }
    if (const auto* exports = top.array("exports"))
        for (std::size_t i = 0; i < exports->size() && why.empty(); ++i) {
            reader r((*exports)[i], "exports[" + std::to_string(i) + "]", why);
            export_route e;
            std::string from;
            r.text("from", from);
            r.mode(e.mode);
            std::error_code parse_ec;
            e.from = topic_pattern::parse(from, parse_ec);
            std::string bad;
            if (parse_ec)
                r.fail("from: " + from + ": " + parse_ec.message());
            else if (auto subject = subject_of_pattern(e.from, bad))
                e.subject = std::move(*subject);
            else
                r.fail("from: " + bad);
            if (r.done())
                c.exports.push_back(std::move(e));
        }
    if (const auto* imports = top.array("imports"))
        for (std::size_t i = 0; i < imports->size() && why.empty(); ++i) {
            reader r((*imports)[i], "imports[" + std::to_string(i) + "]", why);
            import_route im;
            r.text("subject", im.subject);
            r.mode(im.mode);
            r.text("stream", im.stream);
            r.text("durable", im.durable);
            r.number("batch", im.batch, 1, 4096);
            if (std::string bad; !checked_subject_pattern(im.subject, bad))
                r.fail("subject: " + bad);
            if (im.mode == route_mode::jetstream) {
                if (!nats_name(im.stream))
                    r.fail("a jetstream import names its stream");
                if (!nats_name(im.durable))
                    r.fail("a jetstream import names its durable consumer");
            } else if (!im.stream.empty() || !im.durable.empty()) {
                r.fail("stream and durable are for mode \"jetstream\"");
            }
            if (r.done())
                c.imports.push_back(std::move(im));
        }
    if (!top.done())
        return std::nullopt;
    if (c.servers.empty())
        c.servers.push_back("nats://127.0.0.1:4222");
    for (const auto& s : c.servers) {
        if (s.starts_with("tls://"))
            c.tls = true;
        else if (!s.starts_with("nats://")) {
            why = "servers: " + s + ": a server is nats://HOST:PORT or tls://HOST:PORT";
            return std::nullopt;
        }
    }
    if (c.exports.empty() && c.imports.empty()) {
        why = "the config has no exports and no imports: nothing to bridge";
        return std::nullopt;
    }
    if (!why.empty())
        return std::nullopt;
    return c;
}

std::optional<bridge_config> load_config(const std::filesystem::path& file, std::string& why)
{
    std::ifstream in(file);
    if (!in) {
        why = file.string() + ": cannot be read";
        return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto c = parse_config(text.str(), why);
    if (!c)
        why = file.string() + ": " + why;
    return c;
}

} // namespace slotbus::bridge
