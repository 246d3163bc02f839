// The core's admin answers: listings of the slot tree and its traffic, as JSON.
#include "core.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

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

std::int64_t ms_between(core::clock::time_point from, core::clock::time_point to)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

json::object traffic_of(const slot& s, core::clock::time_point now)
{
    const auto& t = s.traffic();
    const auto counts = s.counts();
    // Writers held back by back-pressure, and for how long the slot has held them.
    const auto held = s.blocked_writers.size();
    return {{"name", s.name().str()},
            {"records_in", t.records_in},
            {"records_out", t.records_out},
            {"bytes_in", t.bytes_in},
            {"bytes_out", t.bytes_out},
            {"dropped", counts.dropped},
            {"lost", counts.lost},
            {"depth", counts.messages},
            {"queued_bytes", counts.bytes},
            {"byte_budget", s.config().byte_budget},
            {"held_writers", held},
            {"held_ms", held && s.holding ? ms_between(s.holding_since, now) : 0},
            {"slow", s.slow},
            {"slow_marks", s.slow_marks}};
}

/// The "slots" argument: a name prefix, or {"prefix", "after", "limit"}.
struct listing_request {
    std::string prefix, after;
    std::size_t limit = 1000;
};

listing_request listing_request_of(std::string_view argument, std::error_code& ec)
{
    listing_request r;
    if (!argument.starts_with('{')) {
        r.prefix = std::string(argument);
        return r;
    }
    boost::system::error_code parse_ec;
    const auto v = json::parse(argument, parse_ec);
    const auto* o = parse_ec ? nullptr : v.if_object();
    if (!o) {
        ec = error::invalid_parameter;
        return r;
    }
    if (const auto* p = o->if_contains("prefix"); p && p->is_string())
        r.prefix = std::string(p->get_string());
    if (const auto* a = o->if_contains("after"); a && a->is_string())
        r.after = std::string(a->get_string());
    if (const auto* l = o->if_contains("limit"); l && l->is_int64() && l->get_int64() > 0)
        r.limit = std::min<std::size_t>(static_cast<std::size_t>(l->get_int64()), 1000);
    return r;
}

} // namespace

json::object core::slots(std::string_view argument, std::error_code& ec) const
{
    const auto request = listing_request_of(argument, ec);
    if (ec)
        return {};
    std::string prefix_key;
    if (!request.prefix.empty()) {
        const auto name = slot_name::parse(request.prefix, ec);
        if (ec)
            return {};
        prefix_key = name.key();
    }
    // A page fits a frame whatever is in the tree: slots go in while their
    // JSON fits half a frame (one slot alone always goes, its subscriptions
    // cut to fit); `next` says where the next page starts.
    const std::size_t page_bytes = limits_.max_frame_size() / 2;
    std::size_t bytes = 0;
    json::array slots;
    std::string last_key; // of the last slot given
    bool more = false;
    const auto now = now_();
    std::string after_key;
    if (!request.after.empty()) // a key as `next` gave it; folded again, in case a client did not
        after_key = fold_case(request.after);
    names_.walk(prefix_key, after_key, [&](slot& s) {
        const auto& key = s.name().key();
        json::object o = traffic_of(s, now);
        o["path"] = s.name().path();
        o["owner"] = {{"plugin", s.owner.plugin},
                      {"client", s.owner.client},
                      {"pid", s.owner.pid},
                      {"uid", s.owner.uid},
                      {"claimed_pid", s.owner.claimed_pid},
                      {"connection", s.owner.session}};
        o["readers"] = s.readers().size();
        const auto counts = s.counts();
        // No record queued: null, not MAILSLOT_NO_MESSAGE's 4294967295 (the
        // info frame keeps that, as GetMailslotInfo does).
        if (counts.next_size == mailslot_no_message)
            o["next_size"] = nullptr;
        else
            o["next_size"] = counts.next_size;
        o["max_message_size"] = s.config().max_message_size;
        o["read_timeout"] = s.config().read_timeout;
        o["byte_budget"] = s.config().byte_budget;
        o["overflow"] = to_string(s.config().overflow);
        json::array patterns;
        std::size_t size = json::serialize(o).size() + 32;
        for (const auto& p : s.subscriptions) {
            size += p.str().size() + 3;
            if (size > page_bytes) {
                o["subscriptions_cut"] = true; // more than a frame holds
                break;
            }
            patterns.emplace_back(p.str());
        }
        o["subscriptions"] = std::move(patterns);
        if (!slots.empty() && (slots.size() == request.limit || bytes + size > page_bytes)) {
            more = true;
            return false;
        }
        bytes += size;
        last_key = key;
        slots.push_back(std::move(o));
        return true;
    });
    json::value next = nullptr;
    if (more)
        next = json::string(last_key);
    return {{"slots", std::move(slots)}, {"next", std::move(next)}};
}

json::object core::stats(std::size_t top) const
{
    // The busiest slots (by depth, then records in), so the answer fits a
    // frame however many slots there are; "slots" of the listing has all.
    top = std::min<std::size_t>(top, 1000);
    std::vector<const slot*> busiest;
    std::uint64_t depth = 0, queued_bytes = 0, slow = 0, held = 0, dropped = gone_dropped_;
    slot_traffic all = gone_;
    names_.for_each([&](slot& s) {
        slow += s.slow;
        held += s.blocked_writers.size();
        const auto counts = s.counts();
        depth += counts.messages;
        queued_bytes += counts.bytes;
        dropped += counts.dropped;
        const auto& t = s.traffic();
        all.records_in += t.records_in;
        all.bytes_in += t.bytes_in;
        all.records_out += t.records_out;
        all.bytes_out += t.bytes_out;
        busiest.push_back(&s);
    });
    const auto now = now_();
    const auto busier = [](const slot* a, const slot* b) {
        return std::pair(a->counts().messages, a->traffic().records_in) >
               std::pair(b->counts().messages, b->traffic().records_in);
    };
    const auto shown = std::min(top, busiest.size());
    std::partial_sort(busiest.begin(), busiest.begin() + static_cast<std::ptrdiff_t>(shown),
                      busiest.end(), busier);
    json::array slots;
    for (std::size_t i = 0; i < shown; ++i)
        slots.push_back(traffic_of(*busiest[i], now));
    json::object denied; // {"uid 1001": {"write": 2, "admin": 1}, ...}
    for (const auto& [who, counts] : denials_) {
        json::object by_right;
        for (const auto& [r, n] : counts)
            by_right[to_string(r)] = n;
        denied[who] = std::move(by_right);
    }
    return {
        {"policy",
         policy_->source().empty() ? json::value(nullptr) : json::value(policy_->source())},
        {"denied", std::move(denied)},
        {"connections", sessions_.size()},
        {"connections_accepted", totals_.connections},
        {"slot_count", names_.size()},
        {"slots_created", totals_.slots_created},
        {"writes", totals_.writes},
        {"write_errors", totals_.write_errors},
        {"deliveries", totals_.deliveries},
        {"unrouted", totals_.unrouted},
        {"records_in", all.records_in},
        {"bytes_in", all.bytes_in},
        {"records_out", all.records_out},
        {"bytes_out", all.bytes_out},
        {"dropped", dropped},
        {"depth", depth},
        {"queued_bytes", queued_bytes},
        {"held_writers", held},
        {"slow_slots", slow},
        {"lanes", lanes_.size()},
        {"lane_bytes", total_lane_bytes_},
        {"lane_writes", totals_.lane_writes},
        {"slots", std::move(slots)},
    };
}

} // namespace slotbus::bus
