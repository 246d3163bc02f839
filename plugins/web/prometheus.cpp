#include "prometheus.hpp"

#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>

namespace slotbus::web {

namespace json = boost::json;

std::string escape_label(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\' || c == '"')
            out += '\\', out += c;
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

namespace {

/// Writes one family at a time: HELP and TYPE once, then its samples.
class exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
        name_ = name;
    }
    /// A sample of the current family; labels as {name, value} pairs.
    void sample(double value,
                std::initializer_list<std::pair<std::string_view, std::string_view>> labels = {})
    {
        out_ += name_;
        if (labels.size()) {
            out_ += '{';
            bool first = true;
            for (const auto& [k, v] : labels) {
                if (!first)
                    out_ += ',';
                first = false;
                out_ += k;
                out_ += "=\"";
                out_ += escape_label(v);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        char buffer[32];
        // Whole numbers as integers (counters mostly are); others shortest round-trip.
        const auto [end, ec] =
            std::trunc(value) == value && std::fabs(value) < 9.0e15
                ? std::to_chars(buffer, buffer + sizeof buffer, static_cast<std::int64_t>(value))
                : std::to_chars(buffer, buffer + sizeof buffer, value);
        out_.append(buffer, ec == std::errc() ? end : buffer);
        out_ += '\n';
    }
    /// A family with one unlabelled sample.
    void one(std::string_view name, std::string_view type, std::string_view help, double value)
    {
        family(name, type, help);
        sample(value);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
    std::string name_;
};

std::string_view text(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

const json::array& array_at(const json::object& o, std::string_view key)
{
    static const json::array none;
    const auto* v = o.if_contains(key);
    return v && v->is_array() ? v->get_array() : none;
}

} // namespace

std::string render_metrics(const snapshot& s, bool fresh, std::size_t max_slot_series)
{
    exposition m;
    const auto& st = s.stats;
    m.one("slotbus_up", "gauge", "1 while the web view has current figures from the host",
          fresh ? 1 : 0);
    struct host_series {
        const char *name, *type, *key, *help;
    };
    static constexpr host_series totals[] = {
        {"slotbus_connections", "gauge", "connections", "Open client connections."},
        {"slotbus_connections_accepted_total", "counter", "connections_accepted",
         "Connections accepted since the host started."},
        {"slotbus_slots", "gauge", "slot_count", "Slots in the tree."},
        {"slotbus_slots_created_total", "counter", "slots_created", "Slots created since start."},
        {"slotbus_writes_total", "counter", "writes", "Records written (each write, once)."},
        {"slotbus_write_errors_total", "counter", "write_errors", "Writes that failed."},
        {"slotbus_deliveries_total", "counter", "deliveries",
         "Copies queued into slots (a fanned-out write counts each)."},
        {"slotbus_records_in_total", "counter", "records_in", "Records queued into slots."},
        {"slotbus_records_out_total", "counter", "records_out", "Records read by readers."},
        {"slotbus_bytes_in_total", "counter", "bytes_in", "Bytes queued into slots."},
        {"slotbus_bytes_out_total", "counter", "bytes_out", "Bytes read by readers."},
        {"slotbus_dropped_total", "counter", "dropped",
         "Records slots dropped (overflow policies, slow slots, lost broadcasts)."},
        {"slotbus_queued_records", "gauge", "depth", "Records queued and not yet read."},
        {"slotbus_queued_bytes", "gauge", "queued_bytes", "Bytes queued and not yet read."},
        {"slotbus_held_writers", "gauge", "held_writers",
         "Writers held back by a full slot (back-pressure), over all slots."},
        {"slotbus_slow_slots", "gauge", "slow_slots", "Slots marked slow (dropping, not holding)."},
        {"slotbus_resident_memory_bytes", "gauge", "rss_bytes", "The host's resident memory."},
        {"slotbus_peak_resident_memory_bytes", "gauge", "peak_rss_bytes",
         "The host's peak resident memory."},
        {"slotbus_plugins_running", "gauge", "plugins_running", "Supervised plugins running."},
    };
    for (const auto& t : totals)
        m.one(t.name, t.type, t.help, number_in(st, t.key));
    m.one("slotbus_cpu_seconds_total", "counter", "CPU time the host has used.",
          number_in(st, "cpu_ms") / 1000.0);
    m.one("slotbus_uptime_seconds", "gauge", "Since the host started.",
          number_in(st, "uptime_ms") / 1000.0);

    m.family("slotbus_denied_total", "counter",
             "Requests the policy refused, by identity and right.");
    if (const auto* denied = st.if_contains("denied"); denied && denied->is_object())
        for (const auto& [who, rights] : denied->get_object())
            if (rights.is_object())
                for (const auto& [right, n] : rights.get_object())
                    m.sample(n.is_number() ? n.to_number<double>() : 0,
                             {{"identity", who}, {"right", right}});

    m.one("slotbus_closed_connections_kept", "gauge",
          "Recently closed connections the host remembers (see /connz?state=closed).",
          static_cast<double>(array_at(s.connections, "closed").size()));

    const auto& plugins = array_at(s.plugins, "plugins");
    m.family("slotbus_plugin_up", "gauge", "1 while the supervised plugin runs.");
    for (const auto& p : plugins)
        if (p.is_object())
            m.sample(text(p.get_object(), "state") == "running",
                     {{"plugin", text(p.get_object(), "name")}});
    m.family("slotbus_plugin_restarts_total", "counter", "Times the host restarted the plugin.");
    for (const auto& p : plugins)
        if (p.is_object())
            m.sample(number_in(p.get_object(), "restarts"),
                     {{"plugin", text(p.get_object(), "name")}});

    const auto& peers = array_at(s.hosts, "peers");
    m.family("slotbus_link_up", "gauge", "1 while the link to the peer host is up.");
    for (const auto& p : peers)
        if (p.is_object())
            m.sample(text(p.get_object(), "state") == "up",
                     {{"peer", text(p.get_object(), "host")}});
    struct link_series {
        const char *name, *key, *help;
    };
    static constexpr link_series link_totals[] = {
        {"slotbus_link_records_out_total", "records_out", "Records sent to the peer host."},
        {"slotbus_link_records_in_total", "records_in", "Records received from the peer host."},
        {"slotbus_link_bytes_out_total", "bytes_out", "Bytes sent to the peer host."},
        {"slotbus_link_bytes_in_total", "bytes_in", "Bytes received from the peer host."},
    };
    for (const auto& l : link_totals) {
        m.family(l.name, "counter", l.help);
        for (const auto& p : peers)
            if (p.is_object())
                m.sample(number_in(p.get_object(), l.key),
                         {{"peer", text(p.get_object(), "host")}});
    }
    m.family("slotbus_discovered_hosts", "gauge", "Hosts heard on the broadcast domain.");
    if (const auto* b = s.hosts.if_contains("broadcast"); b && b->is_object())
        m.sample(static_cast<double>(array_at(b->get_object(), "hosts").size()),
                 {{"domain", text(b->get_object(), "domain")}});

    struct slot_series {
        const char *name, *type, *key, *help;
    };
    static constexpr slot_series per_slot[] = {
        {"slotbus_slot_records_in_total", "counter", "records_in", "Records queued into the slot."},
        {"slotbus_slot_records_out_total", "counter", "records_out", "Records its readers read."},
        {"slotbus_slot_bytes_in_total", "counter", "bytes_in", "Bytes queued into the slot."},
        {"slotbus_slot_bytes_out_total", "counter", "bytes_out", "Bytes its readers read."},
        {"slotbus_slot_dropped_total", "counter", "dropped", "Records the slot dropped."},
        {"slotbus_slot_queued_records", "gauge", "depth", "Records waiting in the slot."},
        {"slotbus_slot_queued_bytes", "gauge", "queued_bytes", "Bytes waiting in the slot."},
        {"slotbus_slot_budget_bytes", "gauge", "byte_budget", "The slot's byte budget."},
        {"slotbus_slot_held_writers", "gauge", "held_writers", "Writers the full slot holds back."},
    };
    const auto shown = std::min(max_slot_series, s.slots.size());
    for (const auto& f : per_slot) {
        m.family(f.name, f.type, f.help);
        for (std::size_t i = 0; i < shown; ++i)
            if (s.slots[i].is_object())
                m.sample(number_in(s.slots[i].get_object(), f.key),
                         {{"slot", text(s.slots[i].get_object(), "name")}});
    }
    m.one("slotbus_slot_series_cut", "gauge",
          "Slots left out of the per-slot series (past --max-slot-series or the listing cap).",
          std::max(0.0, number_in(st, "slot_count") - static_cast<double>(shown)));
    return m.take();
}

} // namespace slotbus::web
