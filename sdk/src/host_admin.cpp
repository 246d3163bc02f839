#include "slotbus/host_admin.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace slotbus {

namespace detail {

void start_admin(std::shared_ptr<connection_impl> impl, std::string command, std::string argument,
                 admin_handler h)
{
    const auto request = impl->next_request_id();
    byte_buffer frame;
    encode(frame, admin_frame{
                      request,
                      command,
                      {{reinterpret_cast<const std::uint8_t*>(argument.data()), argument.size()}}});
    impl->start_request(std::move(frame), request,
                        [h = std::move(h)](error_code ec, reply r) mutable {
                            boost::json::value answer;
                            if (!r.text.empty()) {
                                boost::system::error_code parse_ec;
                                answer = boost::json::parse(r.text, parse_ec);
                                if (parse_ec && !ec)
                                    ec = error::invalid_data;
                            }
                            std::move(h)(ec, std::move(answer));
                        });
}

} // namespace detail

boost::json::value admin(connection& bus, std::string_view command, std::string_view argument,
                         std::error_code& ec)
{
    return bus.impl()->wait<boost::json::value>(
        [&](auto h) {
            detail::start_admin(bus.impl(), std::string(command), std::string(argument),
                                std::move(h));
        },
        ec);
}

boost::json::array list_slots(connection& bus, std::string_view prefix, std::error_code& ec)
{
    boost::json::array all;
    boost::json::object ask{{"prefix", prefix}};
    while (true) {
        auto page = admin(bus, "slots", boost::json::serialize(ask), ec);
        const auto* o = ec ? nullptr : page.if_object();
        const auto* slots = o ? o->if_contains("slots") : nullptr;
        if (!ec && (!slots || !slots->is_array()))
            ec = error::invalid_data;
        if (ec)
            return {};
        for (auto& s : slots->get_array())
            all.push_back(std::move(s));
        const auto* next = o->if_contains("next");
        if (!next || !next->is_string())
            return all;
        ask["after"] = next->get_string();
    }
}

boost::json::array list_slots(connection& bus, std::string_view prefix)
{
    std::error_code ec;
    auto all = list_slots(bus, prefix, ec);
    throw_if(ec, "slotbus::list_slots");
    return all;
}

boost::json::value admin(connection& bus, std::string_view command, std::string_view argument)
{
    std::error_code ec;
    auto answer = admin(bus, command, argument, ec);
    throw_if(ec, "slotbus::admin");
    return answer;
}

} // namespace slotbus
