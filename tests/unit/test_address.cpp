#define BOOST_TEST_MODULE address
// The one rule for what a client connects to: unix:PATH, a bare path, tcp:HOST:PORT,
// tls:HOST:PORT.
#include "slotbus/address.hpp"
#include "slotbus/error.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>

using namespace slotbus;
using transport = bus_address::transport;

namespace {
bool refused(std::string_view address)
{
    std::error_code ec;
    (void)parse_address(address, ec);
    return ec == error::invalid_name;
}
} // namespace

BOOST_AUTO_TEST_CASE(a_unix_address_or_a_bare_path_is_a_socket_path)
{
    std::error_code ec;
    auto a = parse_address("unix:/run/slotbus/bus.sock", ec);
    BOOST_TEST(!ec);
    BOOST_TEST((a.kind == transport::unix_socket));
    BOOST_TEST(a.path == "/run/slotbus/bus.sock");
    // Bare: an absolute or relative path, including one with ':' after a '/'.
    for (const std::string path :
         {"/tmp/slotbus-1000/bus.sock", "bus.sock", "./a:b.sock", "run/a:b.sock", "/tmp/x:y"}) {
        a = parse_address(path, ec);
        BOOST_TEST(!ec, path);
        BOOST_TEST((a.kind == transport::unix_socket));
        BOOST_TEST(a.path == path);
        BOOST_TEST(socket_path_of(path) == path); // the older helper agrees
    }
    BOOST_TEST(socket_path_of("unix:/a/b") == "/a/b");
}

BOOST_AUTO_TEST_CASE(a_tcp_address_has_a_host_and_a_port)
{
    std::error_code ec;
    auto a = parse_address("tcp:127.0.0.1:7400", ec);
    BOOST_TEST(!ec);
    BOOST_TEST((a.kind == transport::tcp));
    BOOST_TEST(a.host == "127.0.0.1");
    BOOST_TEST(a.port == "7400");
    a = parse_address("tcp:[::1]:65535", ec);
    BOOST_TEST(!ec);
    BOOST_TEST(a.host == "::1");
    BOOST_TEST(a.port == "65535");
    a = parse_address("tcp:bus.example:0080", ec);
    BOOST_TEST(!ec);
    BOOST_TEST(a.host == "bus.example");
    BOOST_TEST(a.port == "80");
    BOOST_TEST(a.path.empty());
}

BOOST_AUTO_TEST_CASE(a_tls_address_is_written_as_a_tcp_one)
{
    std::error_code ec;
    auto a = parse_address("tls:198.18.0.2:47079", ec);
    BOOST_TEST(!ec);
    BOOST_TEST((a.kind == transport::tls));
    BOOST_TEST(a.host == "198.18.0.2");
    BOOST_TEST(a.port == "47079");
    a = parse_address("tls:[fd00::2]:1", ec);
    BOOST_TEST(!ec);
    BOOST_TEST((a.kind == transport::tls));
    BOOST_TEST(a.host == "fd00::2");
    BOOST_TEST(refused("tls:host"));
    BOOST_TEST(refused("tls::47079"));
    BOOST_TEST(refused("tls:host:0"));
}

BOOST_AUTO_TEST_CASE(a_malformed_address_or_an_unknown_scheme_is_refused)
{
    BOOST_TEST(refused(""));
    BOOST_TEST(refused("unix:"));
    BOOST_TEST(refused("ssl:host:7400"));
    BOOST_TEST(refused("http://host/"));
    BOOST_TEST(refused("weird:bus.sock"));
    BOOST_TEST(refused("tcp:"));
    BOOST_TEST(refused("tcp:host"));
    BOOST_TEST(refused("tcp::7400"));
    BOOST_TEST(refused("tcp:host:"));
    BOOST_TEST(refused("tcp:host:0"));
    BOOST_TEST(refused("tcp:host:65536"));
    BOOST_TEST(refused("tcp:host:123456"));
    BOOST_TEST(refused("tcp:host:7x"));
    BOOST_TEST(refused("tcp:::1:7400")); // IPv6 goes in brackets
    BOOST_TEST(refused("tcp:[]:7400"));
    std::error_code ec = error::access_denied;
    (void)parse_address("tcp:h:1", ec);
    BOOST_TEST(!ec); // cleared on success
}

BOOST_AUTO_TEST_CASE(slotbus_address_names_the_default)
{
    ::setenv("SLOTBUS_ADDRESS", "tcp:127.0.0.1:7400", 1);
    BOOST_TEST(default_address() == "tcp:127.0.0.1:7400");
    ::unsetenv("SLOTBUS_ADDRESS");
    BOOST_TEST(default_address() == default_socket_path());
}
