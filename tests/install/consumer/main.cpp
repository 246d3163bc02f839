// Compiles and links against the installed SDK only.
#include <slotbus/slotbus.hpp>

#include <iostream>

int main()
{
    std::cout << slotbus::slot_name::parse("taxes/sue").str() << '\n';
    slotbus::connection bus;
    std::error_code ec;
    bus.connect("/nonexistent/bus.sock", ec);
    std::cout << (ec ? "no host, as expected\n" : "unexpected host\n");
    return ec ? 0 : 1;
}
