#include "monitor.hpp"

#include "slotbus/error.hpp"
#include "slotbus/host_admin.hpp"

#include <boost/json/serialize.hpp>

namespace slotbus::web {

namespace json = boost::json;
using clock = std::chrono::steady_clock;

double number_in(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_number() ? v->to_number<double>() : 0.0;
}

namespace {

std::int64_t unix_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace

monitor::monitor(connection& bus, monitor_options options)
    : bus_(bus), options_(options), timer_(bus.get_executor())
{
}

void monitor::start(std::function<void()> on_gone)
{
    on_gone_ = std::move(on_gone);
    poll();
}

void monitor::stop()
{
    stopped_ = true;
    timer_.cancel();
}

bool monitor::fresh() const
{
    return last_.stats_current && clock::now() - last_.taken < 3 * options_.interval;
}

void monitor::ask(std::string command, std::string argument, std::function<void(json::value)> then)
{
    async_admin(
        bus_, command, std::move(argument),
        [this, command, then = std::move(then)](boost::system::error_code ec, json::value answer) {
            if (stopped_)
                return;
            if (ec == error::broken_pipe) {
                problem_ = "the host connection is gone";
                if (auto gone = std::exchange(on_gone_, nullptr))
                    gone();
                return;
            }
            // One answer missing (refused, too large) costs only its part:
            // the last look's stays, and the problem is told.
            if (ec || !answer.is_object()) {
                next_problem_ = command + ": " + (ec ? ec.message() : "not an object");
                answer = nullptr;
            }
            then(std::move(answer));
        });
}

void monitor::poll()
{
    next_ = snapshot{};
    next_problem_.clear();
    ask("stats", R"({"top":0})", [this](json::value v) {
        next_.stats_current = v.is_object();
        next_.stats = v.is_object() ? std::move(v.as_object()) : last_.stats;
        next_.stats.erase("slots");
        list_slots_from({});
    });
}

void monitor::list_slots_from(std::string after)
{
    json::object argument{{"limit", 1000}};
    if (!after.empty())
        argument["after"] = after;
    ask("slots", json::serialize(argument), [this](json::value v) {
        if (!v.is_object()) { // the last look's listing, whole
            next_.slots = last_.slots;
            next_.slots_cut = last_.slots_cut;
            return ask_the_rest();
        }
        auto& page = v.as_object();
        if (auto* slots = page.if_contains("slots"); slots && slots->is_array())
            for (auto& s : slots->as_array()) {
                if (next_.slots.size() == options_.max_slots) {
                    next_.slots_cut = true;
                    break;
                }
                next_.slots.push_back(std::move(s));
            }
        const auto* next = page.if_contains("next");
        if (next && next->is_string() && !next_.slots_cut)
            return list_slots_from(std::string(next->get_string()));
        ask_the_rest();
    });
}

void monitor::ask_the_rest()
{
    const auto keep = [](json::value& v, const json::object& was) {
        return v.is_object() ? std::move(v.as_object()) : was;
    };
    ask("connections", "", [this, keep](json::value c) {
        next_.connections = keep(c, last_.connections);
        ask("plugins", json::serialize(json::object{{"log_tail", options_.log_lines}}),
            [this, keep](json::value p) {
                next_.plugins = keep(p, last_.plugins);
                ask("hosts", "", [this, keep](json::value h) {
                    next_.hosts = keep(h, last_.hosts);
                    finish();
                });
            });
    });
}

void monitor::finish()
{
    next_.taken = clock::now();
    if (last_.stats_current && next_.stats_current) { // rates between two good looks
        const double seconds = std::chrono::duration<double>(next_.taken - last_.taken).count();
        const auto per_second = [&](std::string_view key) {
            const double was = number_in(last_.stats, key), is = number_in(next_.stats, key);
            return seconds > 0 && is >= was ? (is - was) / seconds : 0.0;
        };
        history_.push_back({unix_ms(), per_second("writes"), per_second("deliveries"),
                            per_second("bytes_in"), per_second("bytes_out"),
                            per_second("dropped")});
        if (history_.size() > options_.history)
            history_.pop_front();
    }
    // Per slot: against what the same name had at the last poll (a slot made
    // again under an old name starts from zero, and shows no negative rate).
    decltype(seen_) now_seen;
    const double seconds = last_.taken == clock::time_point{}
                               ? 0.0
                               : std::chrono::duration<double>(next_.taken - last_.taken).count();
    for (auto& v : next_.slots) {
        auto& s = v.as_object();
        const std::string name(s.at("name").as_string());
        const seen is{static_cast<std::uint64_t>(number_in(s, "records_in")),
                      static_cast<std::uint64_t>(number_in(s, "records_out"))};
        double in = 0, out = 0;
        if (auto it = seen_.find(name); it != seen_.end() && seconds > 0) {
            in = is.in >= it->second.in ? double(is.in - it->second.in) / seconds : 0;
            out = is.out >= it->second.out ? double(is.out - it->second.out) / seconds : 0;
        }
        s["rate_in"] = in;
        s["rate_out"] = out;
        now_seen.emplace(name, is);
    }
    seen_ = std::move(now_seen);
    last_ = std::move(next_);
    ++generation_;
    problem_ = next_problem_;
    schedule();
}

void monitor::schedule()
{
    timer_.expires_after(options_.interval);
    timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopped_)
            poll();
    });
}

} // namespace slotbus::web
