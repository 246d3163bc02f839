// slotbusd: parse the options, run the host.
#include "slotbus/address.hpp"
#include "slotbus/version.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <iostream>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

#include "host/server.hpp"
#include "service/log.hpp"
#include "service/service.hpp"
#include "transport/tls/peers.hpp"

namespace po = boost::program_options;
using slotbus::bus::log;
using slotbus::bus::log_error;

namespace {

// --topic-types FILE: {"events/orders/**": ["orders.created", ...], ...}
bool load_topic_types(const std::string& path, std::vector<slotbus::bus::topic_types>& out)
{
    std::ifstream in(path);
    if (!in) {
        log_error("--topic-types: cannot read ", path);
        return false;
    }
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    const auto json = boost::json::parse(text.str(), ec);
    if (ec || !json.is_object()) {
        log_error("--topic-types ", path, ": not a JSON object of \"pattern\": [\"type\", ...]");
        return false;
    }
    for (const auto& [key, value] : json.as_object()) {
        std::error_code pec;
        auto pattern = slotbus::topic_pattern::parse(key, pec);
        const auto* types = value.if_array();
        if (pec || !types) {
            log_error("--topic-types ", path, ": \"", std::string_view(key),
                      pec ? "\" is not a topic pattern" : "\" must map to an array of types");
            return false;
        }
        slotbus::bus::topic_types rule{std::move(pattern), {}};
        for (const auto& type : *types) {
            if (!type.is_string()) {
                log_error("--topic-types ", path, ": \"", std::string_view(key),
                          "\" lists a type that is not a string");
                return false;
            }
            rule.accepted.emplace_back(type.get_string());
        }
        out.push_back(std::move(rule));
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    slotbus::bus::host_options options;
    auto& limits = options.limits;
    std::uint64_t slot_budget = limits.default_slot_budget;
    std::string topic_types_file, pid_file, log_file, policy_file;
    std::vector<std::string> plugins_dirs;
    std::string host_name_option, peers_file, host_key_dir, link_listen, clients_file;
    std::vector<std::string> listen;
    slotbus::bus::broadcast_options broadcast;
    std::string broadcast_key;
    std::uint64_t beacon_ms = static_cast<std::uint64_t>(broadcast.interval.count());
    std::uint64_t link_heartbeat_ms = 5000, link_resume_ms = 30000, link_backoff_ms = 1000;
    std::string socket_mode = "0600", socket_group;
    bool daemon = false;
    auto hello_timeout_ms = static_cast<std::uint64_t>(options.hello_timeout.count());
    auto stall_timeout_ms = static_cast<std::uint64_t>(options.stall_timeout.count());
    auto slow_after_ms = static_cast<std::uint64_t>(limits.slow_after.count());

    po::options_description described("slotbusd — the slotbus host\n\nOptions");
    // clang-format off
    described.add_options()
        ("help,h", "print this help and exit")
        ("version", "print the version and exit")
        ("socket,s", po::value(&options.socket_path)->default_value(slotbus::default_socket_path()),
         "Unix socket to listen on (created mode 0600; its directory is created 0700)")
        ("socket-mode", po::value(&socket_mode)->default_value(socket_mode),
         "share the socket: 0660 with --socket-group, 0666 with everyone (the policy says "
         "what each may do; its directory becomes searchable as far)")
        ("socket-group", po::value(&socket_group),
         "the group (name or gid) the socket and its directory belong to")
        ("policy", po::value(&policy_file),
         "JSON policy: which uids, groups and plugins may create, write, read, list and "
         "administer; SIGHUP reloads it (default: this uid and root everything, others nothing)")
        ("max-record-size", po::value(&limits.max_record_size)->default_value(limits.max_record_size),
         "largest record the host accepts, in bytes; larger frames close the connection")
        ("lane-threshold", po::value(&limits.lane_threshold)->default_value(limits.lane_threshold),
         "records of this many bytes or more from a local writer go through shared memory "
         "(docs/lanes.md); 0: every record takes the socket")
        ("max-lane-record", po::value(&limits.max_lane_record)->default_value(limits.max_lane_record),
         "largest record a lane takes, in bytes")
        ("lane-bytes", po::value(&limits.lane_bytes)->default_value(limits.lane_bytes),
         "a writer's lane, in bytes (larger when its records need it)")
        ("max-lane-bytes", po::value(&limits.max_lane_bytes)->default_value(limits.max_lane_bytes),
         "the largest lane, in bytes")
        ("max-total-lane-bytes",
         po::value(&limits.max_total_lane_bytes)->default_value(limits.max_total_lane_bytes),
         "lane memory in all, in bytes (past it, writers keep the socket)")
        ("slot-budget", po::value(&slot_budget)->default_value(slot_budget),
         "unread bytes a slot holds before its overflow policy acts (when its creator asks for none)")
        ("max-slot-budget", po::value(&limits.max_slot_budget)->default_value(limits.max_slot_budget),
         "the largest byte budget a slot's creator may ask for")
        ("max-handles", po::value(&limits.max_handles)->default_value(limits.max_handles),
         "open slot handles per connection")
        ("max-subscriptions", po::value(&limits.max_subscriptions)->default_value(limits.max_subscriptions),
         "topic patterns per slot")
        ("max-connection-subscriptions",
         po::value(&limits.max_connection_subscriptions)->default_value(limits.max_connection_subscriptions),
         "topic patterns one connection may have subscribed")
        ("max-connection-budget",
         po::value(&limits.max_connection_budget)->default_value(limits.max_connection_budget),
         "bytes of budget of the slots one connection created (error 1816 past it)")
        ("max-slots", po::value(&limits.max_slots)->default_value(limits.max_slots), "slots in all")
        ("max-total-subscriptions",
         po::value(&limits.max_total_subscriptions)->default_value(limits.max_total_subscriptions),
         "topic patterns in all")
        ("max-total-budget", po::value(&limits.max_total_budget),
         "bytes of budget of all slots together (error 1816 past it; default: half the RAM)")
        ("push-window", po::value(&limits.max_window)->default_value(limits.max_window),
         "records the host pushes ahead to one reader at most")
        ("push-bytes", po::value(&limits.push_bytes)->default_value(limits.push_bytes),
         "bytes the host pushes ahead to one reader at most")
        ("max-outbox", po::value(&limits.max_outbox)->default_value(limits.max_outbox),
         "unsent bytes to one client before the host stops pushing records to it and "
         "reading from it")
        ("max-held", po::value(&options.max_held)->default_value(options.max_held),
         "bytes of a client's frames the host keeps behind a write to a full slot before it "
         "stops reading from that client (the SDK keeps well under it)")
        ("max-connections", po::value(&options.max_connections)->default_value(options.max_connections),
         "open connections in all; more are refused (error 71)")
        ("max-connections-per-uid",
         po::value(&options.max_connections_per_uid)->default_value(options.max_connections_per_uid),
         "open connections of one uid; more are refused (error 71)")
        ("slow-after", po::value(&slow_after_ms)->default_value(slow_after_ms),
         "ms a full slot may hold its writers back; then it is marked slow and drops (counted) "
         "what does not fit until its reader has read it down to half its budget")
        ("hello-timeout", po::value(&hello_timeout_ms)->default_value(hello_timeout_ms),
         "ms a new connection has to say hello before it is closed")
        ("stall-timeout", po::value(&stall_timeout_ms)->default_value(stall_timeout_ms),
         "ms a connection whose output is over --max-outbox may read none of it before it is closed")
        ("host-name", po::value(&host_name_option),
         "this host's name: \\\\NAME\\mailslot\\ names it (default: the machine's hostname, up to its first dot)")
        ("peers", po::value(&peers_file),
         "JSON file of the hosts to link with (name, address, key fingerprint): "
         "\\\\PEER\\mailslot\\ names go there over TLS")
        ("host-key", po::value(&host_key_dir),
         "directory of this host's key and certificate, for links and tls: clients (host.key, host.pem: "
         "`slotbus keygen`); default: host-key beside the socket")
        ("link-listen", po::value(&link_listen),
         "ADDR:PORT to accept links from peers on (47078 is slotbus's; :0 picks a port)")
        ("listen", po::value(&listen)->composing(),
         "accept clients besides the socket: tcp:IP:PORT (loopback only; a client is its "
         "socket's uid) or tls:IP:PORT (a client is its key's name in --clients); again for "
         "more; port 0 picks one")
        ("clients", po::value(&clients_file),
         "JSON file of the clients --listen tls: takes (name, key fingerprint); reread on SIGHUP")
        ("link-heartbeat", po::value(&link_heartbeat_ms)->default_value(link_heartbeat_ms),
         "ms between link heartbeats; three missed end the link's stream")
        ("link-resume", po::value(&link_resume_ms)->default_value(link_resume_ms),
         "ms a lost link's unfinished writes wait for it to come back (then they fail "
         "with 64)")
        ("link-backoff", po::value(&link_backoff_ms)->default_value(link_backoff_ms),
         "ms of the first wait before redialling a peer (jittered, growing to 30 s)")
        ("domain", po::value(&limits.domain)->default_value(limits.domain),
         "this host's domain: \\\\DOMAIN\\mailslot\\ and \\\\*\\mailslot\\ names broadcast to its hosts")
        ("broadcast", po::value(&broadcast.group)->implicit_value(broadcast.group),
         "broadcast to the domain's hosts over UDP multicast, on this GROUP:PORT (default "
         "239.255.83.66:47077; [ff12::...]:PORT for IPv6), and announce this host there; "
         "without it, broadcasts reach this host's slots only")
        ("broadcast-interface", po::value(&broadcast.interfaces)->composing(),
         "an interface (by name) to join the group on and send from; again for more "
         "(default: the one the group is routed to)")
        ("broadcast-ttl", po::value(&broadcast.ttl)->default_value(broadcast.ttl),
         "hops a broadcast may go: 1 keeps it on the link")
        ("broadcast-key", po::value(&broadcast_key),
         "the domain key (hex, mode 0600: `slotbus keygen --domain-key FILE`): datagrams are "
         "signed with it, and unsigned or wrongly signed ones dropped")
        ("broadcast-rate", po::value(&broadcast.rate)->default_value(broadcast.rate),
         "records per second this host broadcasts at most, on average (bursts of 100); "
         "writers past it wait")
        ("broadcast-seed", po::value(&broadcast.seeds)->composing(),
         "IP:PORT of a host to send beacons to by unicast, for networks without multicast; "
         "again for more")
        ("beacon-interval", po::value(&beacon_ms)->default_value(beacon_ms),
         "ms between this host's beacons (jittered); others forget it after three")
        ("topic-types", po::value(&topic_types_file),
         "JSON file {\"pattern\": [\"type\", ...]}: writes to matching names must be envelopes "
         "of those types, else error 13 for that record")
        ("plugins-dir", po::value(&plugins_dirs)->composing(),
         "run the plugins whose manifests (*.json) are in this directory; may be given more "
         "than once (the shipped plugins beside your own: of two manifests of one name, the "
         "first runs); SIGHUP reloads them")
        ("daemon", po::bool_switch(&daemon),
         "run in the background: returns once the host is ready (or says why it failed)")
        ("pid-file", po::value(&pid_file),
         "write the host's pid here (default with --daemon: slotbusd.pid beside the socket)")
        ("log-file", po::value(&log_file),
         "append the log here (default with --daemon: slotbusd.log beside the socket); "
         "SIGHUP reopens it")
        ("verbose,v", po::bool_switch(&options.verbose), "log every connection");
    // clang-format on

    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, described), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "slotbusd: " << e.what() << " (slotbusd --help lists the options)\n";
        return 2;
    }
    if (vm.count("version")) {
        std::cout << "slotbusd " << slotbus::version << '\n';
        return 0;
    }
    if (vm.count("help")) {
        std::cout << described
                  << "\nslotbusd prints \"slotbusd: ready on PATH\" on stdout once it accepts\n"
                     "clients. SIGTERM or SIGINT stop it gracefully: its plugins first, then\n"
                     "the socket is removed. SIGHUP reloads the plugin manifests and the\n"
                     "policy (a bad policy file keeps the one in force, and the log says why).\n";
        return 0;
    }
    limits.default_slot_budget = slot_budget;
    {
        char* end = nullptr;
        const auto mode = std::strtoul(socket_mode.c_str(), &end, 8);
        // Read and write go together for a socket; the owner keeps both.
        if (socket_mode.empty() || *end != '\0' || (mode & ~0666ul) != 0 || (mode & 0600) != 0600 ||
            ((mode & 0060) != 0 && (mode & 0060) != 0060) ||
            ((mode & 0006) != 0 && (mode & 0006) != 0006)) {
            std::cerr << "slotbusd: --socket-mode " << socket_mode
                      << ": must be 0600, 0660, 0606 or 0666\n";
            return 2;
        }
        options.socket_mode = static_cast<unsigned>(mode);
    }
    if (!socket_group.empty()) {
        char* end = nullptr;
        const auto gid = std::strtoul(socket_group.c_str(), &end, 10);
        if (*end == '\0') {
            options.socket_group = static_cast<unsigned>(gid);
        } else if (const group* g = ::getgrnam(socket_group.c_str())) {
            options.socket_group = g->gr_gid;
        } else {
            std::cerr << "slotbusd: --socket-group " << socket_group
                      << ": no such group on this machine\n";
            return 2;
        }
    }
    if (!vm.count("max-total-budget")) // half of the machine's memory
        limits.max_total_budget = static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                                  static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / 2;
    options.hello_timeout = std::chrono::milliseconds(hello_timeout_ms);
    options.stall_timeout = std::chrono::milliseconds(stall_timeout_ms);
    limits.slow_after = std::chrono::milliseconds(slow_after_ms);
    // Connections cost a descriptor each: take all the kernel lets this
    // process have (the soft limit is often 1024 of a far larger hard one).
    if (rlimit files{};
        ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }
    if (!topic_types_file.empty() && !load_topic_types(topic_types_file, limits.declared_types))
        return 2;
    if (host_name_option.empty()) {
        char host_name[256] = {};
        ::gethostname(host_name, sizeof host_name - 1);
        // A computer name, as Windows has it: `build7` of build7.example.org.
        host_name_option = std::string(host_name).substr(0, std::strcspn(host_name, "."));
    }
    // Both go into every link hello and datagram: a name peers would refuse
    // is refused here, at start.
    for (const auto& [option, name] :
         {std::pair{"--host-name", host_name_option}, std::pair{"--domain", limits.domain}})
        if (!slotbus::bus::valid_host_name(name)) {
            std::cerr << "slotbusd: " << option << " " << name
                      << ": a name is 1 to 63 letters, digits, '-' or '_'\n";
            return 2;
        }
    limits.host_name = host_name_option;

    // Paths are made absolute before a daemon leaves the working directory.
    namespace fs = std::filesystem;
    options.socket_path = fs::absolute(options.socket_path).string();
    for (const auto& dir : plugins_dirs) {
        std::error_code dir_ec;
        if (!fs::is_directory(dir, dir_ec)) {
            std::cerr << "slotbusd: --plugins-dir " << dir << ": "
                      << (fs::exists(dir, dir_ec) ? "not a directory" : "no such directory")
                      << '\n';
            return 2;
        }
        options.plugins_dirs.push_back(fs::absolute(dir));
    }
    if (!policy_file.empty())
        options.policy_file = fs::absolute(policy_file);
    const auto beside_socket = fs::path(options.socket_path).parent_path();
    if (daemon && pid_file.empty())
        pid_file = (beside_socket / "slotbusd.pid").string();
    if (daemon && log_file.empty())
        log_file = (beside_socket / "slotbusd.log").string();
    if (!peers_file.empty()) {
        std::string peers_why;
        auto peers = slotbus::bus::load_peers(peers_file, host_name_option, peers_why);
        if (!peers) {
            std::cerr << "slotbusd: --peers " << peers_file << ": " << peers_why << '\n';
            return 2;
        }
        slotbus::bus::link_options links;
        links.peers = std::move(*peers);
        links.key_dir = fs::absolute(host_key_dir.empty() ? (beside_socket / "host-key").string()
                                                          : host_key_dir);
        links.listen = link_listen;
        links.heartbeat = std::chrono::milliseconds(link_heartbeat_ms);
        links.resume_window = std::chrono::milliseconds(link_resume_ms);
        links.min_backoff = std::chrono::milliseconds(link_backoff_ms);
        options.links = std::move(links);
    } else if (!link_listen.empty()) {
        std::cerr << "slotbusd: --link-listen needs --peers (who may link)\n";
        return 2;
    }
    if (vm.count("broadcast")) {
        if (!broadcast_key.empty())
            broadcast.key_file = fs::absolute(broadcast_key);
        if (beacon_ms < 100 || beacon_ms > 200'000) {
            std::cerr << "slotbusd: --beacon-interval must be 100 to 200000 ms\n";
            return 2;
        }
        if (!(broadcast.rate >= 1)) {
            std::cerr << "slotbusd: --broadcast-rate must be at least 1\n";
            return 2;
        }
        broadcast.interval = std::chrono::milliseconds(beacon_ms);
        options.broadcast = std::move(broadcast);
    } else if (!broadcast_key.empty() || !broadcast.seeds.empty() ||
               !broadcast.interfaces.empty()) {
        std::cerr << "slotbusd: --broadcast-key, --broadcast-seed and --broadcast-interface "
                     "need --broadcast\n";
        return 2;
    }
    for (const auto& address : listen) {
        slotbus::bus::network_listener_options l;
        l.address = address;
        l.key_dir = fs::absolute(host_key_dir.empty() ? (beside_socket / "host-key").string()
                                                      : host_key_dir);
        if (!clients_file.empty())
            l.clients_file = fs::absolute(clients_file);
        options.listen.push_back(std::move(l));
    }
    if (!clients_file.empty() && std::none_of(listen.begin(), listen.end(), [](const auto& a) {
            return a.starts_with("tls:");
        })) {
        std::cerr << "slotbusd: --clients needs --listen tls:IP:PORT (where they connect)\n";
        return 2;
    }
    if (!pid_file.empty())
        pid_file = fs::absolute(pid_file).string();
    if (!log_file.empty())
        log_file = fs::absolute(log_file).string();

    slotbus::bus::daemon_handoff handoff;
    std::string why;
    // A path that is something else is the first thing to say: it is never
    // replaced, whatever its directory is like.
    if (const auto status = fs::symlink_status(options.socket_path);
        fs::exists(status) && !fs::is_socket(status)) {
        std::cerr << "slotbusd: refusing to start: " << options.socket_path << " exists and is "
                  << (fs::is_directory(status) ? "a directory" : "not a socket")
                  << "; choose another --socket\n";
        return 1;
    }
    // First of all: the files the host makes beside its socket go nowhere else.
    if (!slotbus::bus::ensure_host_directory(beside_socket, options.socket_mode,
                                             options.socket_group, why)) {
        std::cerr << "slotbusd: " << why << '\n';
        return 1;
    }
    if (daemon) {
        if (!handoff.daemonize(log_file, why)) {
            std::cerr << "slotbusd: " << why << '\n';
            return 1;
        }
        std::error_code ignored;
        fs::current_path("/", ignored); // hold no directory busy
    } else if (!log_file.empty() && !slotbus::bus::reopen_log(log_file, false, why)) {
        std::cerr << "slotbusd: " << why << '\n';
        return 1;
    }
    if (!log_file.empty())
        options.on_reload = [log_file, daemon] {
            std::string reopen_why;
            if (!slotbus::bus::reopen_log(log_file, daemon, reopen_why))
                log_error(reopen_why);
        };

    boost::asio::io_context io(1);
    slotbus::bus::server host(io, options);
    std::error_code ec;
    host.start(ec);
    if (ec) {
        const std::string message =
            ec == slotbus::error::already_exists
                ? "slotbusd: another host is running on " + options.socket_path +
                      "; not starting a second"
            : !host.start_failure().empty()
                ? "slotbusd: not starting: " + host.start_failure()
                : "slotbusd: cannot listen on " + options.socket_path + ": " + ec.message();
        std::cerr << message << std::endl;
        handoff.failed(message);
        return 1;
    }
    if (!pid_file.empty() && !slotbus::bus::write_pid_file(pid_file, why)) {
        log_error(why);
        handoff.failed("slotbusd: " + why);
        return 1;
    }
    std::string ready = "slotbusd: ready on " + host.socket_path();
    if (host.link_port())
        ready += " links on port " + std::to_string(host.link_port());
    for (const auto& where : host.listening())
        ready += " clients on " + where;
    if (const auto where = host.broadcasting(); !where.empty())
        ready += " broadcasts on " + where;
    std::cout << ready << std::endl;
    handoff.ready(ready + " (pid " + std::to_string(::getpid()) + ")");
    slotbus::bus::notify_service_manager("READY=1\nMAINPID=" + std::to_string(::getpid()));
    io.run();
    slotbus::bus::notify_service_manager("STOPPING=1");
    if (!pid_file.empty()) {
        std::error_code ignored;
        fs::remove(pid_file, ignored);
    }
    log("stopped");
    return 0;
}
