#include "broadcast.hpp"

#include "slotbus/slot_name.hpp"

#include <boost/json/array.hpp>

#include <algorithm>
#include <cmath>

#include "core/policy.hpp"

namespace slotbus::bus {

namespace {

constexpr std::size_t window = 1024; // records a sender's duplicates are recognised within

bool valid_domain(std::string_view name) noexcept
{
    return valid_host_name(name);
}

} // namespace

domain_broadcast::domain_broadcast(broadcast_settings settings)
    : settings_(std::move(settings)), self_key_(fold_case(settings_.host)), tokens_(settings_.burst)
{
    settings_.domain = fold_case(settings_.domain);
}

// ---- sending ----------------------------------------------------------------------------

std::uint32_t domain_broadcast::reserve(std::uint32_t count, clock::time_point now)
{
    if (refilled_ == clock::time_point{})
        refilled_ = now;
    const std::chrono::duration<double> since = now - refilled_;
    tokens_ = std::min(std::max(settings_.burst, 1.0), tokens_ + since.count() * settings_.rate);
    refilled_ = now;
    const auto granted = static_cast<std::uint32_t>(std::min<double>(count, tokens_));
    tokens_ -= granted;
    return granted;
}

domain_broadcast::clock::time_point domain_broadcast::ready_at() const noexcept
{
    // Woken for a tenth of the burst, not for each record the rate allows.
    const double enough = std::max(1.0, std::floor(settings_.burst / 10));
    if (tokens_ >= enough)
        return refilled_;
    const std::chrono::duration<double> wait((enough - tokens_) / settings_.rate);
    return refilled_ + std::chrono::duration_cast<clock::duration>(wait);
}

byte_buffer domain_broadcast::record(std::string_view domain, std::string_view path,
                                     const std::string& key, byte_span payload)
{
    std::string counter(domain);
    counter += '\n';
    counter += key;
    if (name_seq_.size() >= settings_.max_names && !name_seq_.contains(counter))
        name_seq_.clear(); // receivers see the counters start again: no gap is told
    datagram d;
    d.kind = datagram_kind::record;
    d.epoch = settings_.epoch;
    d.seq = ++seq_;
    d.name_seq = ++name_seq_[counter];
    d.host = settings_.host;
    d.domain = domain;
    d.path = path;
    d.payload = payload;
    ++counters_.sent;
    return encode(d, settings_.key.get());
}

byte_buffer domain_broadcast::hello()
{
    datagram d;
    d.kind = datagram_kind::hello;
    d.epoch = settings_.epoch;
    d.name_seq = ++control_;
    d.seq = seq_; // so a receiver learns of the last records lost
    d.host = settings_.host;
    d.domain = settings_.domain;
    d.link_port = settings_.link_port;
    d.lease_ms = static_cast<std::uint32_t>(3 * settings_.interval.count());
    d.fingerprint = settings_.fingerprint;
    return encode(d, settings_.key.get());
}

byte_buffer domain_broadcast::query()
{
    datagram d;
    d.kind = datagram_kind::query;
    d.epoch = settings_.epoch;
    d.name_seq = ++control_;
    d.host = settings_.host;
    d.domain = settings_.domain;
    return encode(d, settings_.key.get());
}

byte_buffer domain_broadcast::bye()
{
    datagram d;
    d.kind = datagram_kind::bye;
    d.epoch = settings_.epoch;
    d.name_seq = ++control_;
    d.seq = seq_;
    d.host = settings_.host;
    d.domain = settings_.domain;
    return encode(d, settings_.key.get());
}

// ---- receiving --------------------------------------------------------------------------

domain_broadcast::known_host* domain_broadcast::host_for(const datagram& d, const std::string& key,
                                                         bool& made)
{
    auto it = hosts_.find(key);
    made = it == hosts_.end();
    if (made) {
        if (hosts_.size() >= settings_.max_hosts) {
            ++counters_.too_many_hosts;
            return nullptr;
        }
        it = hosts_.emplace(key, known_host{}).first;
        known_host& fresh = it->second;
        fresh.name = std::string(d.host);
        fresh.epoch = d.epoch;
        fresh.lease = 3 * settings_.interval; // until its beacon says
        if (auto was = forgotten_.find(key); was != forgotten_.end()) {
            if (was->second.epoch >= d.epoch) { // known from before: where its numbers were
                fresh.epoch = was->second.epoch;
                fresh.highest = was->second.highest;
                fresh.control = was->second.control;
                if (fresh.highest != 0)
                    fresh.seen.set(); // what it sent before it was forgotten counts as taken
            }
            forgotten_.erase(was);
        }
    }
    return &it->second;
}

void domain_broadcast::heard(known_host& h, const endpoint& from, bool by_unicast,
                             clock::time_point now)
{
    h.address = from;
    h.expires = now + h.lease;
    if (!by_unicast)
        h.multicast_until = now + h.lease;
}

bool domain_broadcast::number(known_host& h, const datagram& d)
{
    const bool is_record = d.kind == datagram_kind::record;
    if (h.highest == 0) { // first contact: what came before is not this host's to count
        h.highest = d.seq;
        h.seen.reset();
        h.seen.set(0, is_record);
        return true;
    }
    if (d.seq > h.highest) {
        const auto step = d.seq - h.highest;
        // A beacon numbers the last record sent: up to it, all is due.
        const auto missing = is_record ? step - 1 : step;
        h.lost += missing;
        counters_.lost += missing;
        h.seen = step >= window ? std::bitset<window>{} : h.seen << step;
        h.seen.set(0, is_record);
        h.highest = d.seq;
        return true;
    }
    if (!is_record)
        return true;
    const auto age = h.highest - d.seq;
    if (age < window && h.seen.test(age)) {
        ++h.duplicates;
        ++counters_.duplicates;
        return false;
    }
    // Older than one taken: dropped, so each sender's records stay in order.
    // A later copy of it counts as a duplicate.
    if (age < window)
        h.seen.set(age);
    ++h.late;
    ++counters_.late;
    return false;
}

domain_broadcast::taken domain_broadcast::take(byte_span bytes, const endpoint& from,
                                               bool by_unicast, clock::time_point now)
{
    taken out;
    datagram d;
    switch (decode(bytes, d, settings_.key.get())) {
    case decode_result::ok:
        break;
    case decode_result::malformed:
        ++counters_.malformed;
        return out;
    case decode_result::unsigned_:
        ++counters_.unsigned_;
        return out;
    case decode_result::bad_signature:
        ++counters_.bad_signature;
        return out;
    }
    std::error_code ec;
    const auto name = d.kind == datagram_kind::record ? slot_name::parse(d.path, ec) : slot_name{};
    const bool is_record = d.kind == datagram_kind::record;
    if (!valid_host_name(d.host) || !valid_domain(d.domain) ||
        (is_record && (d.seq == 0 || ec || name.scope() != name_scope::local))) {
        ++counters_.malformed;
        return out;
    }
    const auto key = fold_case(d.host);
    if (key == self_key_) {
        if (d.epoch != settings_.epoch) // its own come back by the multicast loop, and go
            ++counters_.own_name;
        return out;
    }
    bool made = false;
    known_host* h = host_for(d, key, made);
    if (!h)
        return out;
    // Only what is taken says the sender lives, and where: a copy replayed
    // from elsewhere neither keeps a host known nor moves it.
    auto drop = [&] {
        if (made)
            forget(hosts_.find(key), now); // what it knew before stays remembered
        return out;
    };
    if (d.epoch < h->epoch) { // an earlier boot's: replayed, or a clock set back
        ++h->stale;
        ++counters_.stale;
        return drop();
    }
    if (d.epoch > h->epoch) { // it started again: its numbers too
        names_in_all_ -= h->names.size();
        *h = known_host{};
        h->name = std::string(d.host);
        h->epoch = d.epoch;
        h->lease = 3 * settings_.interval;
        out.restarted = !made;
        out.host_key = key;
    }
    if (d.kind != datagram_kind::record) { // numbered apart: replays are refused
        if (d.name_seq <= h->control) {
            ++counters_.replayed;
            return drop();
        }
        h->control = d.name_seq;
    }
    switch (d.kind) {
    case datagram_kind::record: {
        if (!number(*h, d)) // counted there
            return drop();
        heard(*h, from, by_unicast, now);
        ++h->records;
        if (fold_case(d.domain) != settings_.domain) {
            ++counters_.other_domain;
            return out;
        }
        ++counters_.received;
        auto& names = h->names;
        auto last = names.find(name.key());
        if (last == names.end() &&
            (names.size() >= settings_.max_names || names_in_all_ >= settings_.max_names_in_all)) {
            // Past a bound: the sender with the most names starts again (their
            // next records tell no gap), so one sender cannot take them all.
            auto& most = std::max_element(hosts_.begin(), hosts_.end(), [](auto& a, auto& b) {
                             return a.second.names.size() < b.second.names.size();
                         })->second.names;
            names_in_all_ -= most.size();
            most.clear();
            last = names.end();
        }
        if (last != names.end()) {
            // A number at or below the last: the sender's counter started again.
            if (d.name_seq > last->second + 1)
                out.missed = d.name_seq - last->second - 1;
            last->second = d.name_seq;
        } else {
            names.emplace(name.key(), d.name_seq);
            ++names_in_all_;
        }
        out.kind = taken::what::record;
        out.from = h;
        out.path = d.path;
        out.payload = d.payload;
        return out;
    }
    case datagram_kind::hello:
        number(*h, d);
        h->domain = fold_case(d.domain);
        h->link_port = d.link_port;
        h->fingerprint = std::string(d.fingerprint);
        // A lease between one second and ten minutes, whatever it says.
        h->lease = std::clamp(std::chrono::milliseconds(d.lease_ms),
                              std::chrono::milliseconds(1000), std::chrono::milliseconds(600'000));
        heard(*h, from, by_unicast, now);
        // Sent records by unicast: a seed, or a host that proved the key.
        if (by_unicast)
            h->by_unicast = d.signed_by_key ||
                            std::find(seeds_.begin(), seeds_.end(), from.address()) != seeds_.end();
        out.kind = taken::what::hello;
        out.from = h;
        return out;
    case datagram_kind::query:
        if (h->domain.empty())
            h->domain = fold_case(d.domain);
        heard(*h, from, by_unicast, now);
        out.kind = taken::what::query;
        out.from = h;
        return out;
    case datagram_kind::bye:
        number(*h, d);
        out.kind = taken::what::gone;
        out.host_key = key;
        forget(hosts_.find(key), now);
        return out;
    }
    return out;
}

void domain_broadcast::forget(std::map<std::string, known_host, std::less<>>::iterator it,
                              clock::time_point now)
{
    if (forgotten_.size() >= 4 * settings_.max_hosts && !forgotten_.contains(it->first))
        forgotten_.erase(std::min_element(
            forgotten_.begin(), forgotten_.end(),
            [](const auto& a, const auto& b) { return a.second.until < b.second.until; }));
    forgotten_[it->first] = {it->second.epoch, it->second.highest, it->second.control,
                             now + remembered_for};
    names_in_all_ -= it->second.names.size();
    hosts_.erase(it);
}

std::vector<std::string> domain_broadcast::expire(clock::time_point now)
{
    std::vector<std::string> gone;
    for (auto it = hosts_.begin(); it != hosts_.end();) {
        auto next = std::next(it);
        if (it->second.expires <= now) {
            gone.push_back(it->first);
            forget(it, now);
        }
        it = next;
    }
    std::erase_if(forgotten_, [&](const auto& f) { return f.second.until <= now; });
    return gone;
}

const domain_broadcast::known_host* domain_broadcast::find(std::string_view host_key) const
{
    auto it = hosts_.find(host_key);
    return it == hosts_.end() ? nullptr : &it->second;
}

bool domain_broadcast::knows_domain(std::string_view folded) const
{
    return folded == settings_.domain ||
           std::any_of(hosts_.begin(), hosts_.end(),
                       [&](const auto& h) { return h.second.domain == folded; });
}

std::vector<domain_broadcast::endpoint>
domain_broadcast::unicast_members(clock::time_point now) const
{
    std::vector<endpoint> out;
    for (const auto& [key, h] : hosts_)
        if (h.by_unicast && h.multicast_until <= now && out.size() < settings_.max_unicast_members)
            out.push_back(h.address);
    return out;
}

boost::json::array domain_broadcast::hosts(clock::time_point now) const
{
    namespace json = boost::json;
    json::array out;
    for (const auto& [key, h] : hosts_) {
        json::object o;
        o["host"] = h.name;
        o["domain"] = h.domain.empty() ? json::value(nullptr) : json::value(h.domain);
        o["address"] = h.address.address().to_string();
        o["link_port"] = h.link_port;
        o["claimed_fingerprint"] = h.fingerprint;
        o["by"] = h.multicast_until > now ? "multicast" : "unicast";
        o["lease_left_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(h.expires - now).count();
        o["records"] = h.records;
        o["duplicates"] = h.duplicates;
        o["late"] = h.late;
        o["lost"] = h.lost;
        o["stale"] = h.stale;
        out.push_back(std::move(o));
    }
    return out;
}

} // namespace slotbus::bus
