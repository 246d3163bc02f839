#include "broadcasts.hpp"

#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/json/array.hpp>

#include <algorithm>
#include <cstring>
#include <net/if.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/tls/peers.hpp"

#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29 // linux/in6.h, since Linux 4.20
#endif

namespace slotbus::bus {

namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {

constexpr std::chrono::seconds rejoin_every{60}; // switches that snoop without a querier forget
constexpr std::chrono::milliseconds query_reply_within{500};
constexpr std::size_t max_inbound_handles = 4096;
constexpr int max_reads_per_wakeup = 64; // then the other sockets' turn

udp::endpoint parse_endpoint(const std::string& text, const std::string& what)
{
    std::string host, port;
    boost::system::error_code ec;
    if (!split_address(text, host, port))
        throw std::runtime_error(what + " " + text + ": not ADDR:PORT");
    const auto address = asio::ip::make_address(host, ec);
    if (ec)
        throw std::runtime_error(what + " " + text + ": " + ec.message());
    const auto number = std::stoul(port);
    if (number == 0 || number > 65535)
        throw std::runtime_error(what + " " + text + ": the port must be 1 to 65535");
    return {address, static_cast<std::uint16_t>(number)};
}

void set_int(int fd, int level, int name, int value, const char* what)
{
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
        throw std::runtime_error(std::string("cannot set ") + what + ": " + std::strerror(errno));
}

std::string text_of(const udp::endpoint& e)
{
    const auto a = e.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

} // namespace

broadcasts::broadcasts(asio::io_context& io, core& routing, broadcast_options options,
                       broadcast_settings settings, std::function<void()> flush)
    : core_(routing), options_(std::move(options)), state_(std::move(settings)),
      flush_core_(std::move(flush)), socket_(io), beacon_timer_(io), tick_timer_(io),
      rate_timer_(io), jitter_(std::random_device{}())
{
}

broadcasts::~broadcasts() = default;

void broadcasts::start()
{
    group_ = parse_endpoint(options_.group, "--broadcast");
    const auto group = group_.address();
    if (!group.is_multicast())
        throw std::runtime_error("--broadcast " + options_.group +
                                 ": not a multicast group (239.255.0.0/16, or ff12::/16 "
                                 "for IPv6, are for a site's own use)");
    for (const auto& name : options_.interfaces) {
        const auto index = ::if_nametoindex(name.c_str());
        if (index == 0)
            throw std::runtime_error("--broadcast-interface " + name + ": no such interface");
        interfaces_.push_back(index);
    }
    for (const auto& seed : options_.seeds) {
        seeds_.push_back(parse_endpoint(seed, "--broadcast-seed"));
        if (seeds_.back().address().is_v6() != group.is_v6())
            throw std::runtime_error("--broadcast-seed " + seed + ": not of the group's family");
        state_.add_seed(seeds_.back().address());
    }
    if (options_.ttl < 1 || options_.ttl > 255)
        throw std::runtime_error("--broadcast-ttl must be 1 to 255");

    // One socket: bound to the port on every address, so it takes both the
    // group's datagrams and unicast ones (seeds), told apart by their
    // destination (IP_PKTINFO). IP_MULTICAST_ALL off, or it would also get
    // every group any socket of this host joined on that port.
    const bool v6 = group.is_v6();
    socket_.open(v6 ? udp::v6() : udp::v4());
    socket_.set_option(asio::socket_base::reuse_address(true));
    const int fd = socket_.native_handle();
    // Never fragmented: a datagram too large for the link fails to send
    // (counted) instead (every record's fits an IPv6 link's 1280 bytes).
    if (v6) {
        socket_.set_option(asio::ip::v6_only(true));
        set_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, 1, "IPV6_DONTFRAG");
        set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL");
        set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
    } else {
        set_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER");
        set_int(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
        set_int(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
    }
    boost::system::error_code ec;
    socket_.bind(
        {v6 ? udp::endpoint(udp::v6(), group_.port()) : udp::endpoint(udp::v4(), group_.port())},
        ec);
    if (ec)
        throw std::runtime_error("--broadcast " + options_.group + ": cannot bind port " +
                                 std::to_string(group_.port()) + ": " + ec.message());
    join(false);
    joined_ = std::chrono::steady_clock::now();
    // Loopback on: other hosts on this machine (other users, other
    // namespaces sharing the link) hear this one; its own come back and are
    // dropped by their origin.
    socket_.set_option(asio::ip::multicast::enable_loopback(true));
    socket_.set_option(asio::ip::multicast::hops(options_.ttl));
    socket_.non_blocking(true); // a full send buffer drops a datagram, never stalls the host

    session_ = core_.connect_domain(state_.settings().domain);
    log("broadcast: domain ", state_.settings().domain, " on ", where(), ", ttl ", options_.ttl,
        state_.settings().key ? ", datagrams signed with the domain key "
                              : ", datagrams not signed (no --broadcast-key)",
        state_.settings().key ? options_.key_file.string() : std::string(), ", ", options_.rate,
        " records/s at most");
    receive();
    transmit(state_.query(), true);
    transmit(state_.hello(), true);
    beacon_later(options_.interval);
    tick();
}

void broadcasts::join(bool again)
{
    const auto group = group_.address();
    const int fd = socket_.native_handle();
    boost::system::error_code ec;
    const std::vector<unsigned> on = interfaces_.empty() ? std::vector<unsigned>{0} : interfaces_;
    for (const auto index : on) {
        if (group.is_v6()) {
            if (again)
                socket_.set_option(asio::ip::multicast::leave_group(group.to_v6(), index), ec);
            socket_.set_option(asio::ip::multicast::join_group(group.to_v6(), index), ec);
        } else {
            ip_mreqn m{};
            m.imr_multiaddr.s_addr = htonl(group.to_v4().to_uint());
            m.imr_ifindex = static_cast<int>(index);
            if (again)
                ::setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m);
            if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0)
                ec.assign(errno, boost::system::system_category());
        }
        if (ec)
            throw std::runtime_error("--broadcast " + options_.group +
                                     ": cannot join the group: " + ec.message());
    }
}

void broadcasts::stop()
{
    if (stopped_ || !socket_.is_open())
        return;
    transmit(state_.bye(), true);
    stopped_ = true;
    beacon_timer_.cancel();
    tick_timer_.cancel();
    rate_timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (session_)
        core_.disconnect(session_);
    session_ = 0;
}

std::string broadcasts::where() const
{
    std::string out = text_of(group_);
    for (std::size_t i = 0; i < options_.interfaces.size(); ++i)
        out += (i ? "," : " on ") + options_.interfaces[i];
    return out;
}

// ---- sending ----------------------------------------------------------------------------

bool broadcasts::knows_domain(std::string_view domain) const
{
    return state_.knows_domain(domain);
}

std::uint32_t broadcasts::reserve(session_id id, std::uint32_t count)
{
    const auto granted = state_.reserve(count, domain_broadcast::clock::now());
    if (granted == count)
        return granted;
    if (std::find(held_.begin(), held_.end(), id) == held_.end())
        held_.push_back(id);
    if (held_.size() == 1) {
        rate_timer_.expires_at(state_.ready_at());
        rate_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopped_)
                return;
            for (const auto waiting : std::exchange(held_, {}))
                core_.wake(waiting);
            flush_core_();
        });
    }
    return granted;
}

void broadcasts::send(std::string_view domain, std::string_view path, const std::string& key,
                      byte_span record)
{
    transmit(state_.record(domain, path, key, record), false);
}

void broadcasts::transmit(const byte_buffer& datagram, bool beacon)
{
    if (!socket_.is_open())
        return;
    const int fd = socket_.native_handle();
    auto send_to = [&](const udp::endpoint& to) {
        boost::system::error_code ec;
        socket_.send_to(asio::buffer(datagram), to, 0, ec);
        if (ec) {
            ++send_failures_;
            notices_("broadcast: cannot send to ", text_of(to), ": ", ec.message());
        }
    };
    if (interfaces_.empty()) {
        send_to(group_);
    } else {
        for (const auto index : interfaces_) { // one copy per interface
            if (group_.address().is_v6()) {
                boost::system::error_code ignored; // then send_to says what failed
                socket_.set_option(asio::ip::multicast::outbound_interface(index), ignored);
            } else {
                ip_mreqn m{};
                m.imr_ifindex = static_cast<int>(index);
                ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
            }
            send_to(group_);
        }
    }
    for (const auto& to : state_.unicast_members(domain_broadcast::clock::now()))
        send_to(to);
    if (beacon)
        for (const auto& to : seeds_)
            send_to(to);
}

void broadcasts::beacon_later(std::chrono::milliseconds after)
{
    beacon_timer_.expires_after(after);
    beacon_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_)
            return;
        beacon_soon_ = false;
        transmit(state_.hello(), true);
        // Jittered by 20 %, so hosts started together do not beacon together.
        const auto base = options_.interval.count();
        std::uniform_int_distribution<long long> spread(base * 8 / 10, base * 12 / 10);
        beacon_later(std::chrono::milliseconds(spread(jitter_)));
    });
}

// ---- receiving --------------------------------------------------------------------------

void broadcasts::receive()
{
    socket_.async_wait(udp::socket::wait_read, [this](const boost::system::error_code& ec) {
        if (ec || stopped_)
            return;
        const int fd = socket_.native_handle();
        std::uint8_t buffer[max_datagram_size + 1]; // one more: a longer datagram is no datagram
        for (int n = 0; n < max_reads_per_wakeup; ++n) {
            sockaddr_storage from{};
            iovec io{buffer, sizeof buffer};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))];
            msghdr m{};
            m.msg_name = &from;
            m.msg_namelen = sizeof from;
            m.msg_iov = &io;
            m.msg_iovlen = 1;
            m.msg_control = control;
            m.msg_controllen = sizeof control;
            const auto got = ::recvmsg(fd, &m, MSG_DONTWAIT);
            if (got < 0)
                break; // EAGAIN: all read; anything else: the next wake-up tells
            // Where it was sent: to the group, or to this host's own address.
            bool by_unicast = true;
            for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                    in_pktinfo info{};
                    std::memcpy(&info, CMSG_DATA(c), sizeof info);
                    by_unicast = !IN_MULTICAST(ntohl(info.ipi_addr.s_addr));
                } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                    in6_pktinfo info{};
                    std::memcpy(&info, CMSG_DATA(c), sizeof info);
                    by_unicast = !IN6_IS_ADDR_MULTICAST(&info.ipi6_addr);
                }
            }
            udp::endpoint sender;
            std::memcpy(sender.data(), &from,
                        std::min<std::size_t>(m.msg_namelen, sender.capacity()));
            sender.resize(m.msg_namelen);
            take(byte_span(buffer, static_cast<std::size_t>(got)), sender, by_unicast);
        }
        flush_core_();
        receive();
    });
}

void broadcasts::take(byte_span bytes, const udp::endpoint& from, bool by_unicast)
{
    const auto before = state_.counters();
    const auto t = state_.take(bytes, from, by_unicast, domain_broadcast::clock::now());
    const auto& after = state_.counters();
    // What a stranger can make happen at any rate is logged at most every 5 s
    // (each kind of trouble on its own, so one does not hide another).
    if (after.malformed != before.malformed)
        strangers_("broadcast: a datagram from ", text_of(from), " is none of slotbus's");
    else if (after.unsigned_ != before.unsigned_)
        unsigned_log_("broadcast: an unsigned datagram from ", text_of(from),
                      " dropped (this host has the domain key)");
    else if (after.bad_signature != before.bad_signature)
        wrong_key_log_("broadcast: a datagram from ", text_of(from),
                       " dropped: not signed with this domain's key");
    else if (after.own_name != before.own_name)
        impostors_("broadcast: a host at ", text_of(from), " sends as this host's name; dropped");
    else if (after.too_many_hosts != before.too_many_hosts)
        strangers_("broadcast: a datagram from ", text_of(from),
                   " dropped: ", state_.settings().max_hosts, " hosts are known already");
    if (t.restarted)
        forget(t.host_key);
    switch (t.kind) {
    case domain_broadcast::taken::what::record:
        break;
    case domain_broadcast::taken::what::hello:
        if (t.from->link_port && on_beacon)
            on_beacon(t.from->name,
                      text_of(udp::endpoint(t.from->address.address(), t.from->link_port)));
        return;
    case domain_broadcast::taken::what::query:
        if (!beacon_soon_) { // after a random wait, so replies to one query do not come at once
            beacon_soon_ = true;
            std::uniform_int_distribution<long long> wait(0, query_reply_within.count());
            beacon_later(std::chrono::milliseconds(wait(jitter_)));
        }
        return;
    case domain_broadcast::taken::what::gone:
        forget(t.host_key);
        return;
    case domain_broadcast::taken::what::nothing:
        return;
    }
    std::error_code ec;
    const auto name = slot_name::parse(t.path, ec); // checked by take()
    const auto key = fold_case(t.from->name) + '\n' + name.key();
    auto it = handles_.find(key);
    if (it == handles_.end()) {
        // Past the bound (or a connection's --max-handles) they start again,
        // each decided anew.
        if (handles_.size() >=
            std::min<std::size_t>(max_inbound_handles, core_.limits().max_handles)) {
            for (const auto& [k, handle] : handles_)
                core_.close_inbound(session_, handle);
            handles_.clear();
        }
        if (++next_handle_ == 0)
            next_handle_ = 1;
        const auto handle = next_handle_;
        if (const auto refused = core_.open_inbound(session_, handle, t.from->name, name)) {
            ++(refused == error::access_denied ? denied_ : refused_);
            notices_(
                "broadcast: a record from host ", t.from->name, " to ", name.str(), " refused: ",
                refused == error::access_denied ? "no \"domain\" rule of the policy lets domain " +
                                                      state_.settings().domain + " write it"
                                                : refused.message());
            return;
        }
        it = handles_.emplace(key, handle).first;
    }
    core_.deliver_inbound(session_, it->second, t.payload, t.missed, ec);
    if (ec == error::access_denied) { // a reload took it away: decided anew next time
        core_.close_inbound(session_, it->second);
        handles_.erase(it);
        ++denied_;
    } else if (ec) {
        ++refused_;
    }
}

void broadcasts::forget(const std::string& host_key)
{
    const auto prefix = host_key + '\n';
    std::erase_if(handles_, [&](const auto& entry) {
        if (!entry.first.starts_with(prefix))
            return false;
        core_.close_inbound(session_, entry.second);
        return true;
    });
}

bool broadcasts::collect(session_id id)
{
    if (id != session_ || !session_)
        return false;
    byte_buffer discarded;
    core_.take_output(id, discarded);
    return true;
}

void broadcasts::tick()
{
    tick_timer_.expires_after(std::chrono::seconds(1));
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_)
            return;
        const auto now = domain_broadcast::clock::now();
        for (const auto& host : state_.expire(now))
            forget(host);
        // Joined again now and then: a switch that snoops with no querier
        // forgets a membership after some minutes, and a join reports it.
        if (now - joined_ >= rejoin_every) {
            joined_ = now;
            try {
                join(true);
            } catch (const std::exception& e) {
                notices_("broadcast: ", e.what());
            }
        }
        tick();
    });
}

boost::json::object broadcasts::status() const
{
    namespace json = boost::json;
    const auto& c = state_.counters();
    json::object o;
    o["domain"] = state_.settings().domain;
    o["group"] = text_of(group_);
    json::array interfaces;
    for (const auto& name : options_.interfaces)
        interfaces.push_back(json::value(name));
    o["interfaces"] = std::move(interfaces);
    o["ttl"] = options_.ttl;
    o["signed"] = state_.settings().key != nullptr;
    o["rate"] = static_cast<std::uint64_t>(options_.rate);
    o["sent"] = c.sent;
    o["received"] = c.received;
    o["duplicates"] = c.duplicates;
    o["late"] = c.late;
    o["lost"] = c.lost;
    o["stale"] = c.stale;
    o["other_domain"] = c.other_domain;
    o["malformed"] = c.malformed;
    o["unsigned"] = c.unsigned_;
    o["bad_signature"] = c.bad_signature;
    o["own_name"] = c.own_name;
    o["too_many_hosts"] = c.too_many_hosts;
    o["replayed"] = c.replayed;
    o["denied"] = denied_;
    o["refused"] = refused_;
    o["send_failures"] = send_failures_;
    o["hosts"] = state_.hosts(domain_broadcast::clock::now());
    return o;
}

} // namespace slotbus::bus
