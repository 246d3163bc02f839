#define BOOST_TEST_MODULE network_clients
// Clients over TCP and TLS instead of the Unix socket: the same sessions,
// with an identity the host decides — a loopback TCP client is the uid the
// kernel says owns its socket; a TLS client is the name its pinned key has
// in the clients file, and only "client" rules give it anything.
#include "host_fixture.hpp"
#include "lan.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <regex>
#include <unistd.h>

using namespace slotbus::test;
namespace asio = boost::asio;

namespace {

/// "tcp:127.0.0.1:41327" from the host's ready line ("clients on ...").
std::string listening(host& h, const std::string& scheme)
{
    for (const auto& line : h.process().lines()) {
        std::smatch m;
        if (std::regex_search(line, m, std::regex("clients on (" + scheme + ":[^ ]+)")))
            return m[1];
    }
    BOOST_FAIL("the host names no " << scheme << " listener");
    return {};
}

std::unique_ptr<child> peer_at(const std::string& address, const std::vector<std::string>& args,
                               std::vector<std::string> env = {},
                               std::optional<run_as> as = std::nullopt)
{
    env.push_back("SLOTBUS_ADDRESS=" + address);
    return std::make_unique<child>(SLOTBUS_PEER_PATH, args, env, as);
}

/// Whether the host closes a raw connection to `port` on 127.0.0.1 that
/// sends `bytes` (maybe none) within `deadline`.
bool closed_by_host(unsigned short port, const std::string& bytes,
                    std::chrono::milliseconds deadline)
{
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    if (!bytes.empty())
        asio::write(s, asio::buffer(bytes));
    bool closed = false;
    char sink[256];
    std::function<void()> read = [&] {
        s.async_read_some(asio::buffer(sink), [&](boost::system::error_code ec, std::size_t) {
            if (ec)
                closed = true;
            else
                read();
        });
    };
    read();
    io.run_for(deadline);
    return closed;
}

unsigned short port_of(const std::string& address)
{
    return static_cast<unsigned short>(std::stoul(address.substr(address.rfind(':') + 1)));
}

} // namespace

BOOST_AUTO_TEST_CASE(a_loopback_tcp_client_is_the_uid_that_owns_its_socket)
{
    host h({"--listen", "tcp:127.0.0.1:0"});
    const auto address = listening(h, "tcp");
    auto reader = peer(h, {"create", "tcp\\in", "--count", "3", "--senders"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto writer = peer_at(address, {"write", "tcp\\in", "--count", "3"});
    BOOST_TEST(writer->wait_for_line("acked 3 failed 0 delivered 3", 10s), writer->stdout_text());
    BOOST_REQUIRE(reader->wait_exit(10s) == 0);
    BOOST_TEST(records_of(*reader).size() == 3u);
    const auto me = "sender uid " + std::to_string(::geteuid()) + " pid 0 host - client -";
    BOOST_TEST(reader->stdout_text().find(me) != std::string::npos, reader->stdout_text());

    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped the other uid: running a client as nobody needs root");
        return;
    }
    // Another uid over TCP is that uid, not the host's: the default policy gives it nothing.
    auto create = peer(h, {"create", "tcp\\again"});
    BOOST_REQUIRE(create->wait_for_line("created"));
    auto nobody = peer_at(address, {"try", "send:tcp\\again=x", "create:tcp\\mine"}, {},
                          run_as{65534, 65534, {}});
    BOOST_REQUIRE(nobody->wait_exit(10s) == 0);
    BOOST_TEST(nobody->stdout_text().find("send tcp\\again=x 5") != std::string::npos,
               nobody->stdout_text());
    BOOST_TEST(nobody->stdout_text().find("create tcp\\mine 5") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_client_that_closes_at_once_is_never_taken_for_root)
{
    // A socket closed before the host looks it up leaves an end the kernel
    // reports as uid 0 (TIME_WAIT, orphaned): such a connection must be
    // refused, not taken for root's.
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: running a client as nobody needs root");
        return;
    }
    host h({"--listen", "tcp:127.0.0.1:0"}); // the fixture logs connections (--verbose)
    const auto port = std::to_string(port_of(listening(h, "tcp")));
    child hits("/bin/bash",
               {"-c", "for i in $(seq 200); do exec 3<>/dev/tcp/127.0.0.1/" + port +
                          " && exec 3>&-; done; echo done"},
               {}, run_as{65534, 65534, {}});
    BOOST_REQUIRE(hits.wait_for_line("done", 30s));
    BOOST_REQUIRE(eventually([&] {
        const auto log = h.log();
        return log.find("from pid 0 uid 65534") != std::string::npos ||
               log.find("names no uid") != std::string::npos;
    }));
    BOOST_TEST(h.log().find("from pid 0 uid 0") == std::string::npos, h.log());
}

BOOST_AUTO_TEST_CASE(a_loopback_ipv6_client_is_its_uid_too)
{
    {
        asio::io_context io;
        asio::ip::tcp::acceptor probe(io);
        boost::system::error_code ec;
        probe.open(asio::ip::tcp::v6(), ec);
        if (!ec)
            probe.bind({asio::ip::make_address("::1"), 0}, ec);
        if (ec) {
            BOOST_TEST_MESSAGE("skipped: this machine has no IPv6 loopback (" << ec.message()
                                                                              << ")");
            return;
        }
    }
    host h({"--listen", "tcp:[::1]:0"});
    const auto address = listening(h, "tcp");
    BOOST_TEST(address.starts_with("tcp:[::1]:"));
    auto create = peer_at(address, {"try", "create:v6\\in"});
    BOOST_REQUIRE(create->wait_exit(10s) == 0);
    BOOST_TEST(create->stdout_text().find("create v6\\in 0") != std::string::npos,
               create->stdout_text());
    BOOST_TEST(h.log().find("from pid 0 uid " + std::to_string(::geteuid())) != std::string::npos,
               h.log());
}

BOOST_AUTO_TEST_CASE(plain_tcp_off_loopback_and_tls_without_clients_do_not_start)
{
    temp_dir dir;
    for (const auto& bad :
         std::vector<std::vector<std::string>>{{"--listen", "tcp:0.0.0.0:0"},
                                               {"--listen", "tls:127.0.0.1:0"},
                                               {"--listen", "tcp:localhost:7400"},
                                               {"--listen", "udp:127.0.0.1:7400"}}) {
        auto args = bad;
        args.insert(args.end(), {"--socket", (dir.path / "bus.sock").string()});
        child d(SLOTBUSD_PATH, args);
        const auto code = d.wait_exit(10s);
        BOOST_TEST((code && *code != 0), bad[1]);
        BOOST_TEST(d.stderr_text().find("not starting: --listen " + bad[1]) != std::string::npos,
                   d.stderr_text());
    }
}

// TLS on loopback: what a client without the right keys gets, and that junk
// and silent connections cost the host nothing lasting.
BOOST_AUTO_TEST_CASE(a_tls_client_needs_a_pinned_key_and_junk_costs_nothing)
{
    keys k; // A: the host's key; clients below
    const auto ci = k.make("ci"), stranger = k.make("stranger");
    temp_dir files;
    write_file(files.path / "clients.json",
               R"({"clients": [{"name": "ci", "fingerprint": ")" + ci + R"("}]})");
    write_file(files.path / "policy.json",
               R"({"rules": [{"client": "ci", "allow": ["write"], "names": ["events\\**"]}]})");
    host h({"--listen", "tls:127.0.0.1:0", "--host-key", k.key_dir('A'), "--clients",
            (files.path / "clients.json").string(), "--policy",
            (files.path / "policy.json").string()});
    const auto address = listening(h, "tls");
    const std::vector<std::string> as_ci{"SLOTBUS_TLS_KEY=" + (k.dir.path / "ci").string(),
                                         "SLOTBUS_TLS_PIN=" + k.fingerprint['A']};

    auto reader = peer(h, {"create", "events\\tls", "--count", "2", "--senders"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto writer = peer_at(address, {"write", "events\\tls", "--count", "2"}, as_ci);
    BOOST_TEST(writer->wait_for_line("acked 2 failed 0 delivered 2", 10s), writer->stdout_text());
    BOOST_REQUIRE(reader->wait_exit(10s) == 0);
    // The host vouches for the client by its key's name.
    BOOST_TEST(reader->stdout_text().find("sender uid 65534 pid 0 host - client ci") !=
                   std::string::npos,
               reader->stdout_text());

    // Its rules and nothing else: not another name, and no uid's rights.
    auto denied = peer_at(address, {"try", "send:secret=x", "create:events\\mine"}, as_ci);
    BOOST_REQUIRE(denied->wait_exit(10s) == 0);
    BOOST_TEST(denied->stdout_text().find("send secret=x 5") != std::string::npos,
               denied->stdout_text());
    BOOST_TEST(denied->stdout_text().find("create events\\mine 5") != std::string::npos);

    const auto explained = cli(h, {"policy", "explain", "--client", "CI", "events\\tls", "write"});
    BOOST_TEST(explained.code == 0);
    BOOST_TEST(explained.out.find("client ci may write events\\tls: ") != std::string::npos,
               explained.out);
    BOOST_TEST(cli(h, {"policy", "explain", "--client", "ci", "secret", "write"}).code == 1);

    // A host with another key than the pinned one is not the host; a client
    // key the clients file does not pin is not a client.
    auto wrong_pin = peer_at(address, {"try", "send:events\\tls=x"},
                             {as_ci[0], "SLOTBUS_TLS_PIN=" + k.fingerprint['B']});
    auto unknown = peer_at(address, {"try", "send:events\\tls=x"},
                           {"SLOTBUS_TLS_KEY=" + (k.dir.path / "stranger").string(), as_ci[1]});
    auto no_key = peer_at(address, {"try", "send:events\\tls=x"});
    BOOST_TEST((wrong_pin->wait_exit(10s) == 1));
    BOOST_TEST(wrong_pin->stdout_text() == "connect 5\n");
    BOOST_TEST((unknown->wait_exit(10s) == 1));
    BOOST_TEST(unknown->stdout_text() == "connect 5\n");
    BOOST_TEST((no_key->wait_exit(10s) == 1));
    BOOST_TEST(no_key->stdout_text() == "connect 87\n"); // invalid_parameter: no keys given
    BOOST_TEST(eventually(
        [&] { return h.log().find("a TLS client from 127.0.0.1 refused") != std::string::npos; }));

    // Junk is no handshake, and a connection that says nothing is dropped
    // at the handshake deadline (3 s); neither stops the next client.
    const auto port = port_of(address);
    BOOST_TEST(closed_by_host(port, std::string(4096, '\x16'), 5s));
    BOOST_TEST(closed_by_host(port, "", 6s));
    auto after = peer_at(address, {"try", "send:events\\tls=x"}, as_ci);
    BOOST_REQUIRE(after->wait_exit(10s) == 0);
    BOOST_TEST(after->stdout_text().find("send events\\tls=x 2") != std::string::npos,
               after->stdout_text()); // the reader is gone: no such slot, but connected
}

BOOST_AUTO_TEST_CASE(a_client_key_replaced_in_the_clients_file_is_cut_off_on_sighup)
{
    keys k;
    const auto ci = k.make("ci"), new_ci = k.make("new-ci");
    temp_dir files;
    const auto clients = files.path / "clients.json";
    write_file(clients, R"({"clients": [{"name": "ci", "fingerprint": ")" + ci + R"("}]})");
    write_file(files.path / "policy.json",
               R"({"rules": [{"client": "ci", "allow": ["create"], "names": ["ci\\**"]}]})");
    host h({"--listen", "tls:127.0.0.1:0", "--host-key", k.key_dir('A'), "--clients",
            clients.string(), "--policy", (files.path / "policy.json").string()});
    const auto address = listening(h, "tls");
    auto reader = peer_at(address, {"create", "ci\\inbox"},
                          {"SLOTBUS_TLS_KEY=" + (k.dir.path / "ci").string(),
                           "SLOTBUS_TLS_PIN=" + k.fingerprint['A']});
    BOOST_REQUIRE(reader->wait_for_line("created", 10s));
    BOOST_TEST(cli(h, {"ls", "ci"}).out.find("inbox") != std::string::npos);
    // The same name with another key (the old one leaked): the old key's
    // connections go, not only its next ones.
    write_file(clients, R"({"clients": [{"name": "ci", "fingerprint": ")" + new_ci + R"("}]})");
    h.process().signal(SIGHUP);
    BOOST_TEST((reader->wait_exit(10s) == 1)); // its read fails: the connection is gone
    BOOST_TEST(eventually([&] {
        return h.log().find("client ci's key is no longer in the clients file") !=
               std::string::npos;
    }));
    BOOST_TEST(eventually([&] {
        return cli(h, {"ls", "ci"}).out.find("inbox") == std::string::npos;
    }));
}

// Across machines: a client on host A's namespace writes to host B over TLS.
BOOST_AUTO_TEST_CASE(a_tls_client_on_another_machine_writes_to_the_host)
{
    lan net;
    NEED_LAN(net);
    keys k;
    const auto ci = k.make("ci");
    temp_dir files;
    write_file(files.path / "clients.json",
               R"({"clients": [{"name": "ci", "fingerprint": ")" + ci + R"("}]})");
    write_file(files.path / "policy.json",
               R"({"rules": [{"client": "*", "allow": ["write"], "names": ["events\\**"]}]})");
    host b({"--listen", "tls:" + net.ip('B') + ":47079", "--host-key", k.key_dir('B'), "--clients",
            (files.path / "clients.json").string(), "--policy",
            (files.path / "policy.json").string()},
           net.in('B'));
    auto reader = peer(b, {"create", "events\\far", "--count", "500"});
    BOOST_REQUIRE(reader->wait_for_line("created"));
    auto launcher = net.in('A');
    std::vector<std::string> args(launcher.begin() + 1, launcher.end());
    args.insert(args.end(), {SLOTBUS_PEER_PATH, "write", "events\\far", "--count", "500"});
    child writer(launcher.front(), args,
                 {"SLOTBUS_ADDRESS=tls:" + net.ip('B') + ":47079",
                  "SLOTBUS_TLS_KEY=" + (k.dir.path / "ci").string(),
                  "SLOTBUS_TLS_PIN=" + k.fingerprint['B']});
    BOOST_TEST(writer.wait_for_line("acked 500 failed 0 delivered 500", 20s),
               writer.stdout_text() << writer.stderr_text());
    BOOST_REQUIRE(reader->wait_exit(10s) == 0);
    const auto got = records_of(*reader);
    BOOST_REQUIRE(got.size() == 500u);
    BOOST_TEST(got.front() == "w-0");
    BOOST_TEST(got.back() == "w-499");
}
