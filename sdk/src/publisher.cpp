#include "slotbus/publisher.hpp"

#include "slotbus/protocol.hpp"

#include <cstdlib>
#include <unistd.h>

namespace slotbus {

publisher::publisher(connection& bus, std::string plugin) : bus_(&bus)
{
    // `/plugins/` sources are the host's plugins' own: subscribers drop one
    // that another sender uses (see subscriber), so a client is a client.
    if (!bus.plugin_name().empty()) { // the host's word, from the token it gave this plugin
        source_ = "/plugins/" + bus.plugin_name();
        return;
    }
    if (plugin.empty()) {
        const char* from_host = std::getenv("SLOTBUS_PLUGIN");
        plugin = from_host && *from_host ? from_host : "pid-" + std::to_string(::getpid());
    }
    source_ = "/clients/" + plugin;
}

client_slot* publisher::slot_for(std::string_view topic, std::error_code& ec)
{
    auto name = slot_name::parse(topic, ec);
    if (ec)
        return nullptr;
    if (client_slot* open = find_open(name.key()))
        return open;
    auto slot = client_slot::open(*bus_, topic, open_publish, ec);
    if (ec)
        return nullptr;
    return keep_open(name.key(), std::move(slot));
}

client_slot* publisher::find_open(std::string_view key)
{
    const auto it = by_key_.find(key);
    if (it == by_key_.end())
        return nullptr;
    open_.splice(open_.begin(), open_, it->second);
    return &it->second->second;
}

client_slot* publisher::keep_open(std::string key, client_slot slot)
{
    if (client_slot* kept = find_open(key))
        return kept; // opened twice by publishes that raced: `slot` closes
    open_.emplace_front(std::move(key), std::move(slot));
    by_key_.emplace(open_.front().first, open_.begin());
    if (open_.size() > max_open_topics) {
        by_key_.erase(open_.back().first);
        open_.pop_back(); // closes the handle; writes already sent on it stand
    }
    return &open_.front().second;
}

const publisher::resolved_topic& publisher::resolve(std::string_view topic)
{
    if (last_.spelling != topic || (last_.key.empty() && last_.subject.empty())) {
        std::error_code ec;
        auto name = slot_name::parse(topic, ec);
        last_.spelling = topic;
        last_.key = ec ? std::string() : name.key();
        last_.subject = ec ? std::string(topic) : name.path();
    }
    return last_;
}

std::string publisher::subject_of(std::string_view topic)
{
    std::error_code ec;
    auto name = slot_name::parse(topic, ec);
    return ec ? std::string(topic) : name.path();
}

void publisher::start_publish(std::string topic, std::string record, detail::write_handler handler,
                              detail::results pace)
{
    // A reference (no copy per publish): nothing below resolves another
    // topic before `key` has served.
    const std::string& key = resolve(topic).key;
    if (client_slot* open = key.empty() ? nullptr : find_open(key)) {
        // start_write copies the record before it returns.
        const boost::asio::const_buffer data = boost::asio::buffer(record);
        client_slot::start_write(*bus_->impl(), open->handle_, {&data, 1}, std::move(handler),
                                 pace);
        return;
    }
    if (key.empty()) { // no name: its open fails, and says why
        client_slot::start_open(
            bus_->impl(), topic,
            [h = std::move(handler)](boost::system::error_code e, client_slot) mutable {
                std::move(h)(e ? e : boost::system::error_code(error::invalid_name), 0u);
            },
            open_publish);
        return;
    }
    queue_behind_open(std::move(topic), key, {std::move(record), std::move(handler), pace, 0});
}

void publisher::queue_behind_open(std::string topic, const std::string& key, waiting_publish what)
{
    // Already being opened: it waits its turn, so the topic's records (and
    // losses told) keep the order they were published in.
    auto [it, first] = opening_.try_emplace(key);
    it->second.push_back(std::move(what));
    if (!first)
        return;
    // First use of this topic: open it, keep the handle, then send what waited.
    client_slot::start_open(
        bus_->impl(), topic,
        [this, key, topic](boost::system::error_code e, client_slot slot) mutable {
            std::vector<waiting_publish> waiting;
            if (auto w = opening_.find(key); w != opening_.end()) {
                waiting = std::move(w->second);
                opening_.erase(w);
            }
            if (!e)
                keep_open(key, std::move(slot));
            for (auto& w : waiting) {
                if (e)
                    std::move(w.handler)(e, 0u);
                else if (w.lost)
                    report_lost(topic, w.lost);
                else
                    start_publish(topic, std::move(w.record), std::move(w.handler), w.pace);
            }
        },
        open_publish);
}

void publisher::report_lost(std::string_view topic, std::uint32_t count)
{
    if (count == 0)
        return;
    const std::string key = resolve(topic).key;
    if (client_slot* open = key.empty() ? nullptr : find_open(key)) {
        open->report_lost(count);
        return;
    }
    if (key.empty()) // no name: nobody to tell
        return;
    queue_behind_open(
        std::string(topic), key,
        {{}, [](boost::system::error_code, std::uint32_t) {}, detail::results::prompt, count});
}

std::uint32_t publisher::publish(std::string_view topic, const envelope& e, std::error_code& ec)
{
    return publish_record(topic, serialize(e), ec);
}

std::uint32_t publisher::publish_record(std::string_view topic, const std::string& record,
                                        std::error_code& ec)
{
    client_slot* slot = slot_for(topic, ec);
    if (!slot)
        return 0;
    return slot->write(record, ec);
}

} // namespace slotbus
