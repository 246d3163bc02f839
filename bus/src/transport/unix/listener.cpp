#include "listener.hpp"

#include <filesystem>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/service.hpp"

namespace slotbus::bus {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

/// The kernel's word on the peer: its uid, gid and pid when it connected,
/// its supplementary groups, and its process group (for a plugin's token).
/// A peer the kernel says nothing of is nobody (uid and gid 65534).
peer_info credentials_of(unix_socket& s)
{
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return {0, nobody_id, nobody_id, 0, {}, {}};
    peer_info peer{static_cast<std::uint32_t>(cred.pid),
                   static_cast<std::uint32_t>(cred.uid),
                   static_cast<std::uint32_t>(cred.gid),
                   0,
                   {},
                   {}};
    if (const pid_t group = ::getpgid(cred.pid); group > 0)
        peer.pgid = static_cast<std::uint32_t>(group);
    std::vector<gid_t> groups(64);
    for (int tries = 0; tries < 4; ++tries) {
        socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) ==
            0) {
            groups.resize(bytes / sizeof(gid_t));
            peer.groups.assign(groups.begin(), groups.end());
            break;
        }
        if (errno != ERANGE)
            break;
        groups.resize(bytes / sizeof(gid_t) + 1);
    }
    return peer;
}

} // namespace

unix_listener::unix_listener(asio::io_context& io, unix_listener_options options)
    : io_(io), options_(std::move(options)), acceptor_(io), pause_(io)
{
}

void unix_listener::open(std::error_code& ec)
{
    namespace fs = std::filesystem;
    ec.clear();
    const fs::path path = fs::absolute(options_.path);
    if (std::string why;
        !ensure_host_directory(path.parent_path(), options_.mode, options_.group, why)) {
        log_error(why);
        ec = std::make_error_code(std::errc::permission_denied);
        return;
    }
    if (fs::exists(fs::symlink_status(path))) {
        if (!fs::is_socket(fs::symlink_status(path))) {
            ec = std::make_error_code(std::errc::file_exists);
            log_error("refusing to start: ", options_.path, " exists and is not a socket");
            return;
        }
        local::socket probe(io_);
        boost::system::error_code probe_ec;
        probe.connect(local::endpoint(options_.path), probe_ec);
        if (!probe_ec) {
            ec = error::already_exists; // the caller says so
            return;
        }
        log("replacing the stale socket of a host that is gone: ", options_.path);
        fs::remove(path, ec);
        if (ec)
            return;
    }

    boost::system::error_code bec;
    acceptor_.open(local(), bec);
    // The socket is created 0600 (no window in which others could connect).
    const mode_t old_mask = ::umask(0177);
    if (!bec)
        acceptor_.bind(local::endpoint(options_.path), bec);
    ::umask(old_mask);
    // Shared on purpose only once it is there as 0600: never wider than asked.
    if (!bec && options_.group &&
        ::chown(options_.path.c_str(), static_cast<uid_t>(-1), *options_.group) != 0)
        bec.assign(errno, boost::system::system_category());
    if (!bec && options_.mode != 0600 && ::chmod(options_.path.c_str(), options_.mode) != 0)
        bec.assign(errno, boost::system::system_category());
    if (!bec)
        acceptor_.listen(asio::socket_base::max_listen_connections, bec);
    if (bec)
        ec = bec;
}

void unix_listener::start(accept_handler on_accept)
{
    on_accept_ = std::move(on_accept);
    accept();
}

void unix_listener::accept()
{
    acceptor_.async_accept([this](const boost::system::error_code& ec, unix_socket s) {
        if (ec == asio::error::operation_aborted || closed_)
            return;
        if (ec) {
            // Out of descriptors (EMFILE, ENFILE) or memory: the connection
            // waits in the backlog; trying again at once would only spin.
            failures_("accept failed: ", ec.message(), "; pausing accepts for 100 ms");
            pause_.expires_after(std::chrono::milliseconds(100));
            pause_.async_wait([this](const boost::system::error_code& wait_ec) {
                if (!wait_ec)
                    accept();
            });
            return;
        }
        const auto peer = credentials_of(s);
        on_accept_(std::move(s), peer);
        accept();
    });
}

void unix_listener::close()
{
    if (std::exchange(closed_, true))
        return;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    pause_.cancel();
    std::error_code fs_ec;
    std::filesystem::remove(options_.path, fs_ec);
}

} // namespace slotbus::bus
