// The event the orders samples exchange: a described struct that names its type.
#pragma once

#include <boost/describe/class.hpp>

#include <string>
#include <string_view>

namespace shop {

struct order_created {
    static constexpr std::string_view event_type = "orders.created";
    std::string order_id;
    double amount = 0;
    std::string currency;
    int items = 0;
    bool express = false;
};
BOOST_DESCRIBE_STRUCT(order_created, (), (order_id, amount, currency, items, express))

} // namespace shop
