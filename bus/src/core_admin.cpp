// The core's admin answers: listings of the slot tree and its traffic, as JSON.
#include "core.hpp"

#include <boost/json/object.hpp>

namespace slotbus::bus {

namespace json = boost::json;

namespace {

std::string_view to_string(overflow_policy p)
{
    switch (p) {
    case overflow_policy::block:
        return "block";
    case overflow_policy::drop_oldest:
        return "drop-oldest";
    case overflow_policy::drop_newest:
        return "drop-newest";
    }
    return "?";
}

json::object traffic_of(const slot& s)
{
    const auto& t = s.traffic();
    const auto counts = s.counts();
    return {
        {"name", s.name().str()},    {"records_in", t.records_in},   {"records_out", t.records_out},
        {"bytes_in", t.bytes_in},    {"bytes_out", t.bytes_out},     {"dropped", counts.dropped},
        {"depth", counts.messages},  {"queued_bytes", counts.bytes}, {"slow", s.slow},
        {"slow_marks", s.slow_marks}};
}

} // namespace

json::object core::slots(std::string_view prefix, std::error_code& ec) const
{
    std::string prefix_key;
    if (!prefix.empty()) {
        const auto name = slot_name::parse(prefix, ec);
        if (ec)
            return {};
        prefix_key = name.key();
    }
    json::array slots;
    names_.for_each([&](slot& s) {
        const auto& key = s.name().key();
        const bool below = prefix_key.empty() ||
                           (key.starts_with(prefix_key) &&
                            (key.size() == prefix_key.size() || key[prefix_key.size()] == '\\'));
        if (!below)
            return;
        json::object o = traffic_of(s);
        o["path"] = s.name().path();
        o["owner"] = {{"plugin", s.owner.plugin},
                      {"client", s.owner.client},
                      {"pid", s.owner.pid},
                      {"uid", s.owner.uid},
                      {"claimed_pid", s.owner.claimed_pid},
                      {"connection", s.owner.session}};
        o["readers"] = s.readers().size();
        const auto counts = s.counts();
        o["next_size"] = counts.next_size;
        o["max_message_size"] = s.config().max_message_size;
        o["read_timeout"] = s.config().read_timeout;
        o["byte_budget"] = s.config().byte_budget;
        o["overflow"] = to_string(s.config().overflow);
        json::array patterns;
        for (const auto& p : s.subscriptions)
            patterns.emplace_back(p.str());
        o["subscriptions"] = std::move(patterns);
        slots.push_back(std::move(o));
    });
    return {{"slots", std::move(slots)}};
}

json::object core::stats() const
{
    json::array slots;
    std::uint64_t depth = 0, queued_bytes = 0, slow = 0;
    names_.for_each([&](slot& s) {
        slow += s.slow;
        auto o = traffic_of(s);
        depth += o.at("depth").to_number<std::uint64_t>();
        queued_bytes += o.at("queued_bytes").to_number<std::uint64_t>();
        slots.push_back(std::move(o));
    });
    return {
        {"connections", sessions_.size()},  {"connections_accepted", totals_.connections},
        {"slot_count", names_.size()},      {"slots_created", totals_.slots_created},
        {"writes", totals_.writes},         {"write_errors", totals_.write_errors},
        {"deliveries", totals_.deliveries}, {"depth", depth},
        {"queued_bytes", queued_bytes},     {"slow_slots", slow},
        {"slots", std::move(slots)},
    };
}

} // namespace slotbus::bus
