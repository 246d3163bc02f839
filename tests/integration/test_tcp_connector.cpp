#define BOOST_TEST_MODULE tcp_connector
// The SDK's tcp: connector, proven against a tiny fake host on 127.0.0.1 (the
// real host's listeners: test_network_clients.cpp): it speaks the SDK's own codec, welcomes the
// hello, answers an open and acknowledges writes. Every case is bounded: the
// fake host's context runs for a deadline, and ctest's TIMEOUT bounds all.
#include <slotbus/slotbus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace slotbus;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

/// What the fake host saw, for the test to check.
struct seen {
    std::mutex mutex;
    std::string client_name;
    std::uint32_t pid = 0;
    std::string opened;
    std::uint32_t records = 0;
    std::uint16_t client_port = 0; // the client's end of the connection
};

/// A host of one connection: hello -> welcome, open -> a handle, write ->
/// each record delivered to 3 readers.
asio::awaitable<void> serve(tcp::acceptor& acceptor, seen& log)
{
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    {
        const std::lock_guard lock(log.mutex);
        log.client_port = socket.remote_endpoint().port();
    }
    frame_buffer in;
    constexpr std::size_t max_frame = 1u << 20;
    for (;;) {
        const auto room = in.prepare(max_frame);
        const auto n = co_await socket.async_read_some(asio::buffer(room.data(), room.size()),
                                                       asio::use_awaitable);
        in.commit(n);
        byte_buffer out;
        for (;;) {
            const auto found = in.next(max_frame);
            if (found.status != decoded_frame::ok)
                break;
            in.consume(found.size);
            const std::lock_guard lock(log.mutex);
            switch (found.frame.type) {
            case frame_type::hello: {
                hello_frame m;
                if (!decode(found.frame.body, m) || m.magic != protocol_magic)
                    co_return;
                log.client_name = std::string(m.client_name);
                log.pid = m.pid;
                encode(out, welcome_frame{protocol_version, 4096, max_frame, 7, 0, 0,
                                          "fake-tcp-host", ""});
                break;
            }
            case frame_type::open: {
                open_frame m;
                if (!decode(found.frame.body, m))
                    co_return;
                log.opened = std::string(m.name);
                encode(out, result_frame{m.request_id, 0, m.handle, 0, 0, ""});
                break;
            }
            case frame_type::write: {
                write_frame m;
                if (!decode(found.frame.body, m))
                    co_return;
                const auto count = check_record_list(m.records.bytes).count;
                log.records += count;
                ack_batch acks;
                acks.add(0, 3, count);
                acks.flush_to(out);
                break;
            }
            case frame_type::ping: {
                ping_frame m;
                if (decode(found.frame.body, m))
                    encode(out, pong_frame{m.nonce});
                break;
            }
            default: // read reports, closes: nothing to answer
                break;
            }
        }
        if (!out.empty())
            co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
    }
}

/// The fake host on a thread of its own, listening on 127.0.0.1, a port the kernel picks.
struct fake_host {
    asio::io_context io;
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    seen log;
    std::thread thread;

    fake_host()
    {
        asio::co_spawn(io, serve(acceptor, log), asio::detached);
        thread = std::thread([this] { io.run_for(20s); });
    }
    ~fake_host()
    {
        io.stop();
        thread.join();
    }
    [[nodiscard]] std::string address() const
    {
        return "tcp:127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
    }
};

/// TCP_NODELAY on this process's socket from `local_port` to `remote_port`
/// (the client's: it lives in this process), or -1 when there is none.
int no_delay_of(std::uint16_t local_port, std::uint16_t remote_port)
{
    for (int fd = 0; fd < 4096; ++fd) {
        sockaddr_in local{}, remote{};
        socklen_t length = sizeof local;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
            local.sin_family != AF_INET || ntohs(local.sin_port) != local_port)
            continue;
        length = sizeof remote;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &length) != 0 ||
            ntohs(remote.sin_port) != remote_port)
            continue;
        int on = 0;
        length = sizeof on;
        if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &length) != 0)
            return -1;
        return on;
    }
    return -1;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_tcp_address_connects_greets_and_writes)
{
    fake_host host;
    connection bus(connection_options{.client_name = "tcp-test"});
    std::error_code ec;
    bus.connect(host.address(), ec);
    BOOST_REQUIRE_MESSAGE(!ec, ec.message() + ": " + bus.last_failure());
    BOOST_TEST(bus.host_name() == "fake-tcp-host");
    BOOST_TEST(bus.max_record_size() == 4096u);

    auto slot = client_slot::open(bus, "taxes/sue", ec);
    BOOST_REQUIRE(!ec);
    // Pipelined writes, then one that waits: all acknowledged, in order.
    for (int i = 0; i < 10; ++i)
        slot.async_write(asio::buffer(std::string_view("pipelined")),
                         [](boost::system::error_code, std::uint32_t) {});
    BOOST_TEST(slot.write("last one", ec) == 3u);
    BOOST_TEST(!ec);
    const std::lock_guard lock(host.log.mutex);
    BOOST_TEST(host.log.client_name == "tcp-test");
    BOOST_TEST(host.log.pid == static_cast<std::uint32_t>(::getpid()));
    BOOST_TEST(host.log.opened == R"(\\.\mailslot\taxes\sue)");
    BOOST_TEST(host.log.records == 11u);
    // Small pipelined frames: Nagle's wait must be off on the client's socket.
    BOOST_TEST(no_delay_of(host.log.client_port, host.acceptor.local_endpoint().port()) == 1);
}

BOOST_AUTO_TEST_CASE(slotbus_address_may_name_a_tcp_host)
{
    fake_host host;
    ::setenv("SLOTBUS_ADDRESS", host.address().c_str(), 1);
    connection bus;
    std::error_code ec;
    bus.connect(default_address(), ec);
    ::unsetenv("SLOTBUS_ADDRESS");
    BOOST_REQUIRE_MESSAGE(!ec, ec.message());
    BOOST_TEST(bus.host_name() == "fake-tcp-host");
}

BOOST_AUTO_TEST_CASE(nobody_listening_on_the_port_is_refused)
{
    // A port that was just free: bound, then closed.
    std::uint16_t port = 0;
    {
        asio::io_context io;
        tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = a.local_endpoint().port();
    }
    connection bus;
    std::error_code ec;
    bus.connect("tcp:127.0.0.1:" + std::to_string(port), ec);
    BOOST_TEST((ec == std::errc::connection_refused));
}

BOOST_AUTO_TEST_CASE(an_unknown_scheme_fails_with_a_message_naming_the_address)
{
    connection bus;
    std::error_code ec;
    bus.connect("ssl:127.0.0.1:7400", ec);
    BOOST_TEST((ec == error::invalid_name));
    BOOST_TEST(bus.last_failure().find("ssl:127.0.0.1:7400") != std::string::npos);
    try {
        bus.connect("carrier-pigeon:coop");
        BOOST_FAIL("connected to a pigeon");
    } catch (const std::system_error& e) {
        BOOST_TEST((e.code() == error::invalid_name));
        BOOST_TEST(std::string(e.what()).find("carrier-pigeon:coop") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(a_tls_address_without_keys_says_what_it_needs)
{
    connection_options no_keys;
    no_keys.tls = {};
    connection bus(no_keys);
    std::error_code ec;
    bus.connect("tls:127.0.0.1:7400", ec);
    BOOST_TEST((ec == error::invalid_parameter));
    BOOST_TEST(bus.last_failure().find("SLOTBUS_TLS_KEY") != std::string::npos);
    connection_options no_such_key;
    no_such_key.tls = {"/nonexistent/key", "sha256:00"};
    connection other(no_such_key);
    other.connect("tls:127.0.0.1:7400", ec);
    BOOST_TEST((ec == error::invalid_parameter));
    BOOST_TEST(other.last_failure().find("/nonexistent/key/host.pem") != std::string::npos,
               other.last_failure());
}
