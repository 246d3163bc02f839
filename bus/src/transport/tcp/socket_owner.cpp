#include "socket_owner.hpp"

#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace slotbus::bus {

namespace {

void put_address(const boost::asio::ip::address& a, __be32 (&out)[4])
{
    if (a.is_v4()) {
        const auto bytes = a.to_v4().to_bytes();
        std::memcpy(out, bytes.data(), bytes.size());
    } else {
        const auto bytes = a.to_v6().to_bytes();
        std::memcpy(out, bytes.data(), bytes.size());
    }
}

struct fd_guard {
    int fd;
    ~fd_guard()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

} // namespace

std::optional<std::uint32_t> socket_owner_uid(const boost::asio::ip::tcp::endpoint& client,
                                              const boost::asio::ip::tcp::endpoint& local)
{
    if (client.address().is_v4() != local.address().is_v4())
        return std::nullopt;
    const fd_guard nl{::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)};
    if (nl.fd < 0)
        return std::nullopt;
    // One exact lookup (no NLM_F_DUMP): the client's end, seen from its side.
    struct {
        nlmsghdr header;
        inet_diag_req_v2 request;
    } ask{};
    ask.header.nlmsg_len = sizeof ask;
    ask.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    ask.header.nlmsg_flags = NLM_F_REQUEST;
    ask.request.sdiag_family = client.address().is_v4() ? AF_INET : AF_INET6;
    ask.request.sdiag_protocol = IPPROTO_TCP;
    ask.request.idiag_states = ~0u;
    ask.request.id.idiag_sport = htons(client.port());
    ask.request.id.idiag_dport = htons(local.port());
    put_address(client.address(), ask.request.id.idiag_src);
    put_address(local.address(), ask.request.id.idiag_dst);
    ask.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    ask.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(nl.fd, &ask, sizeof ask, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) !=
        static_cast<ssize_t>(sizeof ask))
        return std::nullopt;
    alignas(nlmsghdr) char answer[8192];
    const auto n = ::recv(nl.fd, answer, sizeof answer, 0);
    if (n < static_cast<ssize_t>(sizeof(nlmsghdr)))
        return std::nullopt;
    const auto* h = reinterpret_cast<const nlmsghdr*>(answer);
    if (!NLMSG_OK(h, static_cast<unsigned>(n)) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg)))
        return std::nullopt; // NLMSG_ERROR: no such socket
    const auto* found = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
    // The kernel matched the 4-tuple; check it is the end asked for, and a
    // live socket of a process: a client that closed at once leaves a
    // TIME_WAIT or orphaned end, which has no inode and reports uid 0.
    __be32 src[4] = {}, dst[4] = {};
    put_address(client.address(), src);
    put_address(local.address(), dst);
    if (ntohs(found->id.idiag_sport) != client.port() ||
        ntohs(found->id.idiag_dport) != local.port() ||
        std::memcmp(found->id.idiag_src, src, sizeof src) != 0 ||
        std::memcmp(found->id.idiag_dst, dst, sizeof dst) != 0 || found->idiag_inode == 0 ||
        found->idiag_state == TCP_TIME_WAIT || found->idiag_state == TCP_CLOSE)
        return std::nullopt;
    return found->idiag_uid;
}

} // namespace slotbus::bus
