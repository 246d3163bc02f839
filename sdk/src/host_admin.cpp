#include "slotbus/host_admin.hpp"

#include <boost/json/parse.hpp>

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

boost::json::value admin(connection& bus, std::string_view command, std::string_view argument)
{
    std::error_code ec;
    auto answer = admin(bus, command, argument, ec);
    throw_if(ec, "slotbus::admin");
    return answer;
}

} // namespace slotbus
