#include "live_tail.hpp"

#include "slotbus/envelope.hpp"
#include "slotbus/error.hpp"
#include "slotbus/slot_name.hpp"

#include <boost/json/serialize.hpp>

namespace slotbus::web {

namespace json = boost::json;
using clock = std::chrono::steady_clock;

namespace {

bool matches(std::string_view wanted, std::string_view value)
{
    if (wanted.empty())
        return true;
    if (wanted.ends_with('*'))
        return value.starts_with(wanted.substr(0, wanted.size() - 1));
    return value == wanted;
}

/// At most `max` bytes of `text`, cut on a character boundary, as valid UTF-8.
std::string preview(std::string_view text, std::size_t max)
{
    if (text.size() > max) {
        std::size_t cut = max;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80)
            --cut;
        return to_valid_utf8(text.substr(0, cut)) + "…";
    }
    return to_valid_utf8(text);
}

} // namespace

tail_filter tail_filter::make(std::string_view pattern, std::string_view type,
                              std::string_view source, std::error_code& ec)
{
    tail_filter f;
    ec.clear();
    if (!pattern.empty()) {
        f.pattern = topic_pattern::parse(pattern, ec);
        if (ec)
            return {};
    }
    if (type.size() > 256 || source.size() > 256) {
        ec = error::invalid_parameter;
        return {};
    }
    f.type = std::string(type);
    f.source = std::string(source);
    return f;
}

bool tail_filter::wants(std::string_view name_key, std::string_view event_type,
                        std::string_view event_source) const
{
    return pattern.matches(name_key) && matches(type, event_type) && matches(source, event_source);
}

void tail_feed::push(std::string event)
{
    const bool was_ready = ready();
    bytes_ += event.size();
    events_.push_back(std::move(event));
    while (events_.size() > max_events_ || (bytes_ > max_bytes && events_.size() > 1)) {
        bytes_ -= events_.front().size();
        events_.pop_front();
        ++dropped_here_;
    }
    if (!was_ready)
        notify();
}

void tail_feed::bus_dropped(std::uint64_t n)
{
    const bool was_ready = ready();
    dropped_by_bus_ += n;
    if (!was_ready && n)
        notify();
}

void tail_feed::notify()
{
    if (on_ready)
        on_ready();
}

std::string tail_feed::take()
{
    std::string out;
    if (dropped_here_ || dropped_by_bus_) {
        missed_here_total_ += std::exchange(dropped_here_, 0);
        missed_bus_total_ += std::exchange(dropped_by_bus_, 0);
        out += "event: missed\ndata: ";
        out +=
            json::serialize(json::object{{"here", missed_here_total_}, {"bus", missed_bus_total_}});
        out += "\n\n";
    }
    for (auto& e : events_) {
        out += "event: record\ndata: ";
        out += e;
        out += "\n\n";
    }
    events_.clear();
    bytes_ = 0;
    return out;
}

live_tail::live_tail(connection& bus, tail_options options)
    : bus_(bus), options_(std::move(options)), pace_(bus.get_executor()),
      prune_timer_(bus.get_executor())
{
}

void live_tail::start(std::function<void(std::error_code)> done)
{
    slot_options o;
    // A slow tail never holds a writer back; dropping the newest costs the host
    // only a count (no queue work), and what the tail shows is a sample anyway.
    o.overflow = overflow_policy::drop_newest;
    o.byte_budget = options_.inbox_budget;
    server_slot::async_create(
        bus_, options_.inbox, o,
        [this, done = std::move(done)](boost::system::error_code ec, server_slot inbox) {
            if (!ec) {
                inbox_.emplace(std::move(inbox));
                prune();
            }
            done(ec);
        });
}

void live_tail::stop()
{
    stopped_ = true;
    pace_.cancel();
    prune_timer_.cancel();
    patterns_.clear();
    if (inbox_)
        inbox_->cancel();
}

std::shared_ptr<tail_feed> live_tail::open(tail_filter filter, std::error_code& ec)
{
    ec.clear();
    if (!inbox_ || stopped_) {
        ec = error::broken_pipe;
        return nullptr;
    }
    release_gone();
    if (feeds_.size() >= options_.max_feeds) {
        ec = error::too_many_open_files;
        return nullptr;
    }
    auto pattern = filter.pattern.str();
    auto feed = std::make_shared<tail_feed>(std::move(filter), options_.feed_events);
    feeds_.push_back({feed, pattern});
    auto& use = patterns_[pattern];
    if (use.feeds++ == 0)
        inbox_->async_subscribe(
            pattern, [this, pattern](boost::system::error_code sub_ec, subscription sub) {
                auto it = patterns_.find(pattern);
                // Nobody watches it any more, or it failed: the feed shows nothing.
                if (!sub_ec && it != patterns_.end() && !stopped_)
                    it->second.sub = std::move(sub);
            });
    if (!reading_)
        read();
    return feed;
}

void live_tail::release_gone()
{
    for (auto it = feeds_.begin(); it != feeds_.end();) {
        if (!it->feed.expired()) {
            ++it;
            continue;
        }
        if (auto p = patterns_.find(it->pattern); p != patterns_.end() && --p->second.feeds == 0)
            patterns_.erase(p); // the subscription's destructor unsubscribes
        it = feeds_.erase(it);
    }
}

void live_tail::prune()
{
    release_gone();
    prune_timer_.expires_after(std::chrono::seconds(1));
    prune_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !stopped_)
            prune();
    });
}

void live_tail::read()
{
    if (stopped_ || !inbox_)
        return;
    reading_ = true;
    inbox_->async_read_records(256, [this](boost::system::error_code ec, record_batch batch) {
        reading_ = false;
        if (stopped_ || ec == boost::asio::error::operation_aborted)
            return;
        if (ec) {
            // The inbox is gone (the connection with it): the monitor sees it too.
            return;
        }
        handle(batch);
        // Paced: past max_rate in a second, the inbox fills and the host
        // drops what comes (counted, and told to the feeds).
        const auto now = clock::now();
        if (now - window_start_ >= std::chrono::seconds(1)) {
            window_start_ = now;
            in_window_ = 0;
        }
        in_window_ += static_cast<std::uint32_t>(batch.size());
        if (in_window_ < options_.max_rate)
            return read();
        pace_.expires_at(window_start_ + std::chrono::seconds(1));
        reading_ = true;
        pace_.async_wait([this](boost::system::error_code wait_ec) {
            reading_ = false;
            if (!wait_ec)
                read();
        });
    });
}

void live_tail::handle(const record_batch& batch)
{
    std::vector<std::shared_ptr<tail_feed>> live;
    for (const auto& w : feeds_)
        if (auto f = w.feed.lock())
            live.push_back(std::move(f));
    for (std::size_t i = 0; i < batch.size(); ++i) {
        ++seen_;
        if (live.empty())
            continue;
        if (const auto missed = batch.missed_before(i))
            for (auto& f : live)
                f->bus_dropped(missed);
        const auto data = batch[i];
        const auto& from = batch.sender(i);
        std::error_code name_ec;
        const auto name = slot_name::parse(from.name, name_ec);
        std::error_code envelope_ec;
        const auto e = parse_envelope(data, envelope_ec);
        std::string event; // made once, for the first feed that wants it
        for (auto& f : live) {
            if (!f->filter().wants(name_ec ? std::string_view() : std::string_view(name.key()),
                                   envelope_ec ? std::string_view() : std::string_view(e.type),
                                   envelope_ec ? std::string_view() : std::string_view(e.source)))
                continue;
            if (event.empty()) {
                constexpr std::size_t attribute_bytes = 256;
                json::object o{{"seq", seen_},
                               {"at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count()},
                               {"name", preview(from.name, attribute_bytes)},
                               {"size", data.size()},
                               {"envelope", !envelope_ec}};
                if (!envelope_ec) { // a peer's strings: each cut, so an event stays small
                    o["type"] = preview(e.type, attribute_bytes);
                    o["source"] = preview(e.source, attribute_bytes);
                    o["subject"] = preview(e.subject, attribute_bytes);
                    o["id"] = preview(e.id, attribute_bytes);
                    o["time"] = preview(e.time, attribute_bytes);
                    o["data"] = preview(slotbus::json_text(e.data), options_.preview_bytes);
                } else {
                    o["data"] = preview(data, options_.preview_bytes);
                }
                json::object sender{{"uid", from.uid}, {"pid", from.pid}};
                if (!from.plugin.empty())
                    sender["plugin"] = from.plugin;
                if (!from.host.empty())
                    sender["host"] = preview(from.host, attribute_bytes);
                if (!from.client.empty())
                    sender["client"] = preview(from.client, attribute_bytes);
                o["from"] = std::move(sender);
                event = slotbus::json_text(o);
            }
            f->push(event);
        }
    }
}

} // namespace slotbus::web
