// The request and the reply of the health check samples.
#pragma once

#include <boost/describe/class.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace health {

struct ping {
    static constexpr std::string_view event_type = "health.ping";
    std::string from;
    std::int64_t sequence = 0;
};
BOOST_DESCRIBE_STRUCT(ping, (), (from, sequence))

struct pong {
    static constexpr std::string_view event_type = "health.pong";
    std::string status;
    std::int64_t sequence = 0;
};
BOOST_DESCRIBE_STRUCT(pong, (), (status, sequence))

} // namespace health
