#include "server.hpp"

#include "session.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <string_view>
#include <sys/resource.h>
#include <unistd.h>

#include "service/log.hpp"
#include "transport/shm/memfd_lane.hpp"

namespace slotbus::bus {

namespace asio = boost::asio;

namespace {

/// The identity `explain` asks about: a uid with its groups as this machine
/// has them, or a plugin.
identity identity_of_uid(std::uint32_t uid)
{
    identity who;
    who.uid = uid;
    if (const passwd* p = ::getpwuid(uid)) {
        who.gid = p->pw_gid;
        int count = 64;
        std::vector<gid_t> groups(static_cast<std::size_t>(count));
        if (::getgrouplist(p->pw_name, p->pw_gid, groups.data(), &count) < 0) {
            groups.resize(static_cast<std::size_t>(count));
            ::getgrouplist(p->pw_name, p->pw_gid, groups.data(), &count);
        }
        groups.resize(static_cast<std::size_t>(std::max(count, 0)));
        who.groups.assign(groups.begin(), groups.end());
    }
    return who;
}

/// A "Vm...:   1234 kB" figure of /proc/self/status, in bytes. Its VmHWM is
/// the peak; getrusage's ru_maxrss lags behind it (and behind VmRSS).
std::uint64_t status_bytes(std::string_view field)
{
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':')
            return std::stoull(line.substr(field.size() + 1)) * 1024;
    return 0;
}

} // namespace

server::server(asio::io_context& io, host_options options)
    : io_(io), options_(std::move(options)), core_(options_.limits),
      listener_(io, {options_.socket_path, options_.socket_mode, options_.socket_group}),
      signals_(io), sweep_timer_(io)
{
    core_.set_admin_handler(
        [this](session_id from, std::string_view command, std::string_view argument,
               std::error_code& ec) { return answer_admin(from, command, argument, ec); });
    if (memfd_lanes_supported()) // else every record takes the socket
        core_.set_lane_maker(make_memfd_lane);
}

server::~server() = default;

void server::start(std::error_code& ec)
{
    namespace fs = std::filesystem;
    ec.clear();
    const fs::path path = fs::absolute(options_.socket_path);
    if (!options_.policy_file.empty()) {
        std::string why;
        auto rules = policy::load(options_.policy_file, ::geteuid(), why);
        if (!rules) {
            start_failure_ = "the policy " + options_.policy_file.string() + " " + why;
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        log("policy ", options_.policy_file.string(), ": ", rules->size(), " rules");
        core_.set_policy(std::make_shared<const policy>(std::move(*rules)));
    }
    if (options_.links) {
        links_ = std::make_unique<links>(io_, core_, *options_.links, [this] { flush_touched(); });
        try {
            links_->start();
        } catch (const std::exception& e) {
            start_failure_ = std::string("links: ") + e.what();
            links_.reset();
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        core_.set_remote(links_.get());
    }
    if (options_.broadcast) {
        broadcast_settings settings;
        settings.host = core_.limits().host_name;
        settings.domain = core_.limits().domain;
        settings.epoch =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
        settings.link_port = link_port();
        settings.fingerprint = links_ ? links_->fingerprint() : std::string();
        settings.interval = options_.broadcast->interval;
        settings.rate = options_.broadcast->rate;
        settings.burst = options_.broadcast->burst;
        if (!options_.broadcast->key_file.empty()) {
            std::string why;
            auto key = domain_key::load(options_.broadcast->key_file, ::geteuid(), why);
            if (!key) {
                start_failure_ =
                    "the domain key " + options_.broadcast->key_file.string() + " " + why;
                ec = std::make_error_code(std::errc::invalid_argument);
                return;
            }
            settings.key = std::make_shared<const domain_key>(std::move(*key));
        }
        broadcasts_ = std::make_unique<broadcasts>(
            io_, core_, *options_.broadcast, std::move(settings), [this] { flush_touched(); });
        if (links_)
            broadcasts_->on_beacon = [this](const std::string& host, const std::string& address) {
                links_->hint(host, address);
            };
        try {
            broadcasts_->start();
        } catch (const std::exception& e) {
            start_failure_ = std::string("broadcast: ") + e.what();
            broadcasts_.reset();
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        core_.set_broadcaster(broadcasts_.get());
    }
    for (const auto& options : options_.listen) {
        auto l = std::make_unique<network_listener>(io_, options);
        std::string why;
        if (!l->open(why)) {
            start_failure_ = why;
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        network_.push_back(std::move(l));
    }
    listener_.open(ec);
    if (ec)
        return;

    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.add(SIGHUP);
    std::signal(SIGPIPE, SIG_IGN);
    wait_signal();
    listener_.start([this](unix_socket socket, peer_info peer) {
        admit(detail::byte_stream(std::move(socket)), std::move(peer));
    });
    for (auto& l : network_)
        l->start([this](detail::byte_stream stream, peer_info peer, std::string key) {
            admit(std::move(stream), std::move(peer), std::move(key));
        });
    sweep();
    if (!options_.plugins_dirs.empty()) {
        plugins_ = std::make_unique<supervisor>(
            io_, core_,
            supervisor_options{options_.plugins_dirs, std::filesystem::absolute(path).string()});
        plugins_->reload();
    }
}

std::string server::answer_admin(session_id from, std::string_view command,
                                 std::string_view argument, std::error_code& ec)
{
    namespace json = boost::json;
    if (command == "slots") {
        auto answer = core_.slots(argument, ec);
        return ec ? std::string() : json::serialize(answer);
    }
    if (command == "stats") {
        std::size_t top = 100;
        boost::system::error_code parse_ec;
        if (const auto v = json::parse(argument, parse_ec); !parse_ec && v.is_object())
            if (const auto* n = v.as_object().if_contains("top");
                n && n->is_int64() && n->get_int64() >= 0)
                top = static_cast<std::size_t>(n->get_int64());
        auto answer = core_.stats(top);
        rusage usage{};
        ::getrusage(RUSAGE_SELF, &usage);
        auto ms = [](const timeval& t) { return t.tv_sec * 1000 + t.tv_usec / 1000; };
        answer["pid"] = ::getpid();
        answer["uptime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - started_)
                                  .count();
        answer["rss_bytes"] = status_bytes("VmRSS");
        answer["peak_rss_bytes"] = status_bytes("VmHWM");
        answer["cpu_ms"] = ms(usage.ru_utime) + ms(usage.ru_stime);
        answer["plugins_running"] = plugins_ ? plugins_->running() : 0;
        return json::serialize(answer);
    }
    // {"log_tail": N} / {"name": NAME, "lines": N}: how many kept lines to give.
    const auto lines_asked = [&](std::string_view field) -> std::size_t {
        boost::system::error_code parse_ec;
        if (const auto v = json::parse(argument, parse_ec); !parse_ec && v.is_object())
            if (const auto* n = v.as_object().if_contains(field); n && n->is_int64())
                return static_cast<std::size_t>(
                    std::clamp<std::int64_t>(n->get_int64(), 0, supervisor::kept_log_lines));
        return 0;
    };
    if (command == "plugins") {
        if (plugins_)
            return json::serialize(plugins_->describe(lines_asked("log_tail")));
        return json::serialize(json::object{{"plugins_dir", nullptr},
                                            {"plugins_dirs", json::array()},
                                            {"plugins", json::array()},
                                            {"manifest_errors", json::array()}});
    }
    if (command == "plugin") { // {"name": NAME, "action": "start" | "stop" | "restart"}
        boost::system::error_code parse_ec;
        const auto v = json::parse(argument, parse_ec);
        const auto* o = parse_ec ? nullptr : v.if_object();
        const auto* name = o ? o->if_contains("name") : nullptr;
        const auto* action = o ? o->if_contains("action") : nullptr;
        if (!name || !name->is_string() || !action || !action->is_string()) {
            ec = error::invalid_parameter;
            return {};
        }
        if (!plugins_) {
            ec = error::file_not_found;
            return {};
        }
        log("plugin ", name->get_string(), ": ", action->get_string(), " asked by connection ",
            from);
        const auto state = plugins_->control(name->get_string(), action->get_string(), ec);
        return ec ? std::string()
                  : json::serialize(json::object{{"name", *name}, {"state", state}});
    }
    if (command == "reload") {
        log("reload asked by connection ", from);
        return json::serialize(reload("reload"));
    }
    if (command == "logs") {
        boost::system::error_code parse_ec;
        const auto v = json::parse(argument, parse_ec);
        const auto* name = !parse_ec && v.is_object() ? v.as_object().if_contains("name") : nullptr;
        if (!name || !name->is_string()) {
            ec = error::invalid_parameter;
            return {};
        }
        if (!plugins_) {
            ec = error::file_not_found;
            return {};
        }
        const auto lines =
            v.as_object().contains("lines") ? lines_asked("lines") : supervisor::kept_log_lines;
        auto answer = plugins_->logs(name->get_string(), lines, ec);
        return ec ? std::string() : json::serialize(answer);
    }
    if (command == "connections")
        return json::serialize(core_.connections());
    if (command == "explain")
        return explain(argument, ec);
    if (command == "hosts") {
        json::object answer{{"host", core_.limits().host_name}};
        answer["fingerprint"] = links_ ? json::value(links_->fingerprint()) : nullptr;
        answer["link_port"] = link_port();
        answer["peers"] = links_ ? links_->status() : json::array();
        answer["broadcast"] = broadcasts_ ? json::value(broadcasts_->status()) : nullptr;
        return json::serialize(answer);
    }
    if (command == "stop") {
        log("stop requested by connection ", from);
        // Posted, so the answer is queued first; it may still go down with the
        // connection, which is why `slotbus stop` waits for the socket to go.
        asio::post(io_, [this] { stop(); });
        return R"({"stopping":true})";
    }
    ec = error::invalid_function;
    return {};
}

boost::json::object server::reload(std::string_view why)
{
    if (options_.on_reload)
        options_.on_reload();
    reload_policy();
    reload_clients();
    if (plugins_) {
        log(why, ": reloading the plugin manifests");
        plugins_->reload();
    } else {
        log(why, ": no plugins directory to reload");
    }
    boost::json::object answer{{"reloaded", true}};
    if (plugins_)
        answer["manifest_errors"] = plugins_->describe().at("manifest_errors");
    return answer;
}

void server::reload_policy()
{
    if (options_.policy_file.empty())
        return;
    std::string why;
    auto rules = policy::load(options_.policy_file, ::geteuid(), why);
    if (!rules) {
        warn("SIGHUP: the policy ", options_.policy_file.string(), " ", why,
             "; the policy in force stays");
        return;
    }
    const auto count = rules->size();
    const auto revoked = core_.set_policy(std::make_shared<const policy>(std::move(*rules)));
    log("SIGHUP: policy ", options_.policy_file.string(), " reloaded: ", count, " rules; ", revoked,
        " handles or subscriptions it no longer allows were closed");
    flush_touched();
}

std::string server::explain(std::string_view argument, std::error_code& ec) const
{
    namespace json = boost::json;
    boost::system::error_code parse_ec;
    const auto doc = json::parse(argument, parse_ec);
    const auto* o = parse_ec ? nullptr : doc.if_object();
    const auto* uid = o ? o->if_contains("uid") : nullptr;
    const auto* plugin = o ? o->if_contains("plugin") : nullptr;
    const auto* peer_host = o ? o->if_contains("host") : nullptr;
    const auto* client = o ? o->if_contains("client") : nullptr;
    const auto* domain = o ? o->if_contains("domain") : nullptr;
    const auto* right_text = o ? o->if_contains("right") : nullptr;
    const auto* name_text = o ? o->if_contains("name") : nullptr;
    const auto asked = right_text && right_text->is_string()
                           ? right_from_string(right_text->get_string())
                           : std::nullopt;
    if (!asked) {
        ec = error::invalid_parameter;
        return {};
    }
    const right r = *asked;
    identity who;
    const int asked_about = !!uid + !!plugin + !!peer_host + !!client + !!domain;
    const auto named = [&](const json::value* v) {
        return v && v->is_string() && valid_host_name(v->get_string());
    };
    if (asked_about == 1 && uid && uid->is_int64() && uid->get_int64() >= 0) {
        who = identity_of_uid(static_cast<std::uint32_t>(uid->get_int64()));
    } else if (asked_about == 1 && plugin && plugin->is_string()) {
        who.plugin = std::string(plugin->get_string());
        if (plugins_)
            who.permissions = plugins_->permissions_of(who.plugin);
    } else if (asked_about == 1 && (named(peer_host) || named(client) || named(domain))) {
        who.uid = who.gid = nobody_id;
        const auto* v = peer_host ? peer_host : client ? client : domain;
        (peer_host ? who.host : client ? who.client : who.domain) = fold_case(v->get_string());
    } else {
        ec = error::invalid_parameter;
        return {};
    }
    topic_pattern name;
    if (names_a_slot(r)) {
        std::error_code name_ec;
        if (name_text && name_text->is_string())
            name = topic_pattern::parse(name_text->get_string(), name_ec);
        if (!name_text || name_ec) {
            ec = error::invalid_name;
            return {};
        }
    }
    const auto d = core_.rules().decide(who, r, name);
    const auto& source = core_.rules().source();
    return json::serialize(json::object{
        {"identity", who.str()},
        {"right", to_string(r)},
        {"name", names_a_slot(r) ? json::value(name.str()) : json::value(nullptr)},
        {"allowed", d.allowed},
        {"by", d.by},
        {"policy", source.empty() ? json::value(nullptr) : json::value(source)},
    });
}

void server::wait_signal()
{
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        if (signo == SIGHUP) {
            (void)reload("SIGHUP");
            wait_signal();
            return;
        }
        log("signal ", signo, ": stopping");
        stop();
    });
}

void server::admit(detail::byte_stream stream, peer_info peer, std::string key)
{
    if (stopped_)
        return;
    const auto who =
        peer.client.empty() ? "uid " + std::to_string(peer.uid) : "client " + peer.client;
    auto& of_who = connections_of_[who];
    const auto refuse = [&](const std::string& why) {
        refusals_("refusing a connection: ", why);
        refuse_connection(stream, why);
    };
    if (sessions_.size() >= options_.max_connections) {
        refuse("the host has --max-connections " + std::to_string(options_.max_connections) +
               " connections");
    } else if (of_who >= options_.max_connections_per_uid) {
        refuse(who + " has --max-connections-per-uid " +
               std::to_string(options_.max_connections_per_uid) + " connections");
    } else {
        const auto pid = peer.pid;
        auto client = peer.client;
        const auto id = core_.connect(std::move(peer));
        if (options_.verbose)
            log("connection ", id, " from pid ", pid, " ", who);
        ++of_who;
        who_of_.emplace(id, connection_identity{who, std::move(client), std::move(key)});
        auto s =
            std::make_shared<session>(static_cast<session_owner&>(*this), std::move(stream), id);
        sessions_.emplace(id, s);
        s->start();
    }
    if (of_who == 0)
        connections_of_.erase(who);
}

void server::reload_clients()
{
    bool any = false;
    for (auto& l : network_) {
        if (!l->tls())
            continue;
        any = true;
        std::string why;
        if (!l->reload_clients(why))
            warn("SIGHUP: ", why, "; the clients in force stay");
    }
    if (!any)
        return;
    // A key taken out of the file (or given another name) is no longer that
    // client's, now: a replaced key's connections go too.
    std::vector<std::shared_ptr<session>> gone;
    for (const auto& entry : who_of_) {
        const auto& key = entry.second.key;
        if (key.empty())
            continue;
        const auto& name = entry.second.client;
        if (std::none_of(network_.begin(), network_.end(),
                         [&](const auto& l) { return l->tls() && l->knows_client(key, name); }))
            gone.push_back(sessions_.at(entry.first));
    }
    for (auto& s : gone) {
        warn("SIGHUP: closing connection ", s->id(), ": ", who_of_.at(s->id()).who,
             "'s key is no longer in the clients file");
        s->shut("its key is no longer in the clients file");
    }
}

std::vector<std::string> server::listening() const
{
    std::vector<std::string> out;
    for (const auto& l : network_)
        out.push_back(l->where());
    return out;
}

void server::log_slot_event(const core::slot_event& e)
{
    const auto seconds = std::to_string(e.held.count() / 1000) + "." +
                         std::to_string(e.held.count() % 1000 / 100) + " s";
    switch (e.what) {
    case core::slot_event::holding:
        return slow_log_("slot ", e.slot, " has held ", e.writers,
                         e.writers == 1 ? " writer" : " writers", " back for ", seconds,
                         ": its readers read slower than it is written (slotbus info shows it)");
    case core::slot_event::released:
        return slow_log_("slot ", e.slot, " holds no writers back any more (it held them for ",
                         seconds, ")");
    case core::slot_event::slow:
        return slow_log_("slot ", e.slot, " is slow: it held writers back for ",
                         options_.limits.slow_after.count(),
                         " ms; what does not fit is dropped and counted until it has read down "
                         "to half its budget");
    case core::slot_event::caught_up:
        return slow_log_("slot ", e.slot, " has caught up");
    }
}

void server::sweep()
{
    core_.tick();
    flush_touched(); // writers a slot marked slow let go
    for (const auto& e : core_.take_slot_events())
        log_slot_event(e);
    const auto now = session::clock::now();
    std::vector<std::shared_ptr<session>> late, stalled;
    for (const auto& [id, s] : sessions_) {
        if (!core_.greeted(id) && now - s->connected_at() > options_.hello_timeout)
            late.push_back(s);
        else if (s->stalled(now, options_.stall_timeout))
            stalled.push_back(s);
    }
    for (auto& s : late) {
        refusals_("closing connection ", s->id(), ": no hello within ",
                  options_.hello_timeout.count(), " ms");
        s->shut("no hello within " + std::to_string(options_.hello_timeout.count()) + " ms");
    }
    for (auto& s : stalled) {
        refusals_("closing connection ", s->id(), ": it has read none of its ", "output for ",
                  options_.stall_timeout.count(), " ms");
        s->shut("slow consumer: it read none of its output for " +
                std::to_string(options_.stall_timeout.count()) + " ms");
    }
    sweep_timer_.expires_after(std::chrono::milliseconds(250));
    sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && !stopped_)
            sweep();
    });
}

void server::flush_touched()
{
    // A link's flow taking results can touch more sessions (its slot's
    // readers): until nothing is left, boundedly.
    for (int round = 0; round < 16; ++round) {
        const auto touched = core_.take_touched();
        if (touched.empty())
            break;
        for (auto id : touched) {
            auto it = sessions_.find(id);
            if (it == sessions_.end()) {
                if (links_ && links_->collect(id))
                    continue;
                if (broadcasts_)
                    broadcasts_->collect(id);
                continue;
            }
            auto s = it->second; // may be forgotten inside flush()
            s->flush();
            if (core_.take_resume(id))
                s->resume();
        }
    }
    if (links_)
        links_->flush();
}

void server::forget(session_id id, std::string_view reason)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        return;
    auto keep = it->second;
    sessions_.erase(it);
    if (auto who = who_of_.find(id); who != who_of_.end()) {
        if (--connections_of_[who->second.who] == 0)
            connections_of_.erase(who->second.who);
        who_of_.erase(who);
    }
    core_.disconnect(id, reason);
    if (options_.verbose)
        log("connection ", id, " closed: ", reason);
    flush_touched();
}

void server::stop()
{
    if (stopping_)
        return;
    stopping_ = true;
    // Plugins go first, while the bus still runs: they can finish their work.
    if (plugins_)
        plugins_->stop_all([this] { finish_stop(); });
    else
        finish_stop();
}

void server::finish_stop()
{
    if (stopped_)
        return;
    stopped_ = true;
    boost::system::error_code ignored;
    listener_.close(); // and the socket file goes
    for (auto& l : network_)
        l->close();
    signals_.cancel(ignored);
    sweep_timer_.cancel();
    if (broadcasts_)
        broadcasts_->stop();
    if (links_)
        links_->stop();
    while (!sessions_.empty())
        sessions_.begin()->second->shut("the host stopped");
    io_.stop();
}

} // namespace slotbus::bus
