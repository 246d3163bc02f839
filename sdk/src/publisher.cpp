#include "slotbus/publisher.hpp"

#include <cstdlib>
#include <unistd.h>

namespace slotbus {

publisher::publisher(connection& bus, std::string plugin) : bus_(&bus)
{
    if (plugin.empty()) {
        const char* from_host = std::getenv("SLOTBUS_PLUGIN");
        plugin = from_host && *from_host ? from_host : "pid-" + std::to_string(::getpid());
    }
    source_ = "/plugins/" + plugin;
}

client_slot* publisher::slot_for(std::string_view topic, std::error_code& ec)
{
    auto name = slot_name::parse(topic, ec);
    if (ec)
        return nullptr;
    auto it = slots_.find(name.key());
    if (it == slots_.end()) {
        auto slot = client_slot::open(*bus_, topic, ec);
        if (ec)
            return nullptr;
        it = slots_.emplace(name.key(), std::move(slot)).first;
    }
    return &it->second;
}

std::string publisher::subject_of(std::string_view topic)
{
    std::error_code ec;
    auto name = slot_name::parse(topic, ec);
    return ec ? std::string(topic) : name.path();
}

std::uint32_t publisher::publish(std::string_view topic, const envelope& e, std::error_code& ec)
{
    client_slot* slot = slot_for(topic, ec);
    if (!slot)
        return 0;
    return slot->write(serialize(e), ec);
}

} // namespace slotbus
