#include "bridge.hpp"

#include "subjects.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <iostream>
#include <stdexcept>

namespace slotbus::bridge {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

void check(natsStatus s, const std::string& what)
{
    if (s != NATS_OK)
        throw std::runtime_error(what + ": " + natsStatus_GetText(s) + " (" +
                                 nats_GetLastError(nullptr) + ")");
}

std::string header(natsMsg* msg, const char* key)
{
    const char* value = nullptr;
    return natsMsgHeader_Get(msg, key, &value) == NATS_OK && value ? value : std::string();
}

/// A CloudEvents source naming a plugin of this host (`/plugins/NAME`) is
/// this host's claim only; elsewhere it would be a forgery (subscribers
/// check it against the writing plugin). It travels as `//ORIGIN/plugins/NAME`.
std::string exported_source(std::string_view source, const std::string& origin)
{
    if (source.starts_with("/plugins/"))
        return "//" + origin + std::string(source);
    return std::string(source);
}

} // namespace

bridge::bridge(connection& bus, connection& control, bridge_config config, std::string me)
    : bus_(bus), control_(control), config_(std::move(config)), me_(std::move(me)),
      epoch_(std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count())),
      out_(bus, me_), status_out_(control, me_), status_timer_(bus.get_executor()),
      pending_timer_(bus.get_executor())
{
}

bridge::~bridge()
{
    stop();
}

void bridge::start()
{
    check(natsOptions_Create(&options_), "nats options");
    std::vector<const char*> servers;
    for (const auto& s : config_.servers)
        servers.push_back(s.c_str());
    check(natsOptions_SetServers(options_, servers.data(), static_cast<int>(servers.size())),
          "servers");
    check(natsOptions_SetName(options_, ("slotbus nats-bridge " + config_.origin).c_str()), "name");
    if (!config_.user.empty())
        check(natsOptions_SetUserInfo(options_, config_.user.c_str(), config_.password.c_str()),
              "user");
    if (!config_.token.empty())
        check(natsOptions_SetToken(options_, config_.token.c_str()), "token");
    if (!config_.creds_file.empty())
        check(
            natsOptions_SetUserCredentialsFromFiles(options_, config_.creds_file.c_str(), nullptr),
            "creds " + config_.creds_file.string());
    if (!config_.nkey_seed_file.empty())
        check(natsOptions_SetNKeyFromSeed(options_, config_.nkey_public.c_str(),
                                          config_.nkey_seed_file.c_str()),
              "nkey " + config_.nkey_seed_file.string());
    if (config_.tls) {
        check(natsOptions_SetSecure(options_, true), "tls");
        if (!config_.tls_ca.empty())
            check(natsOptions_LoadCATrustedCertificates(options_, config_.tls_ca.c_str()),
                  "tls ca " + config_.tls_ca.string());
        if (!config_.tls_cert.empty())
            check(natsOptions_LoadCertificatesChain(options_, config_.tls_cert.c_str(),
                                                    config_.tls_key.c_str()),
                  "tls cert " + config_.tls_cert.string());
    }
    // Reconnect for ever, each wait jittered so many bridges do not come back together.
    check(natsOptions_SetMaxReconnect(options_, -1), "reconnect");
    check(natsOptions_SetReconnectWait(options_, config_.reconnect_wait.count()), "reconnect");
    check(natsOptions_SetReconnectJitter(options_, config_.reconnect_jitter.count(),
                                         config_.reconnect_jitter.count()),
          "jitter");
    check(natsOptions_SetRetryOnFailedConnect(options_, true, &bridge::on_connected, this),
          "retry");
    check(natsOptions_SetDisconnectedCB(options_, &bridge::on_disconnected, this), "callback");
    check(natsOptions_SetReconnectedCB(options_, &bridge::on_reconnected, this), "callback");

    // The local side first: what is exported waits in its slot until NATS is up.
    auto make_inbox = [&](route_mode mode, std::optional<server_slot>& inbox) {
        for (const auto& e : config_.exports) {
            if (e.mode != mode)
                continue;
            if (!inbox)
                inbox = server_slot::create(
                    bus_, "slotbus/nats-bridge/" + me_ +
                              (mode == route_mode::core ? "/core" : "/jetstream"));
            subscriptions_.push_back(inbox->subscribe(e.from.str()));
        }
    };
    make_inbox(route_mode::core, core_inbox_);
    make_inbox(route_mode::jetstream, jetstream_inbox_);

    const auto s = natsConnection_Connect(&nc_, options_);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED)
        check(s, "connect to " + config_.servers.front());
    jsOptions jo;
    jsOptions_Init(&jo);
    // Room for a window of resends while libnats still holds the first tries.
    jo.PublishAsync.MaxPending = 2 * static_cast<int64_t>(config_.publish_window);
    jo.PublishAsync.AckHandler = &bridge::on_publish_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    jo.Wait = config_.ack_wait.count();
    check(natsConnection_JetStream(&js_, nc_, &jo), "jetstream");
    if (s == NATS_OK)
        connected();
    else
        std::cerr << "nats-bridge: " << config_.servers.front()
                  << " cannot be reached yet (down, or refusing this config's credentials); "
                     "trying again in the background"
                  << std::endl;
    if (core_inbox_)
        read_core();
    publish_status();
}

void bridge::on_connected(natsConnection*, void* self)
{
    auto* b = static_cast<bridge*>(self);
    boost::asio::post(b->bus_.get_executor(), [b] { b->connected(); });
}

void bridge::on_disconnected(natsConnection*, void* self)
{
    auto* b = static_cast<bridge*>(self);
    boost::asio::post(b->bus_.get_executor(), [b] {
        b->up_ = false;
        ++b->counters_.disconnects;
        if (!b->stopping_)
            std::cerr << "nats-bridge: disconnected from NATS; reconnecting" << std::endl;
    });
}

void bridge::on_reconnected(natsConnection*, void* self)
{
    auto* b = static_cast<bridge*>(self);
    boost::asio::post(b->bus_.get_executor(), [b] {
        ++b->counters_.reconnects;
        std::cerr << "nats-bridge: reconnected" << std::endl;
        b->connected();
    });
}

void bridge::connected()
{
    if (stopping_)
        return;
    up_ = true;
    if (!std::exchange(set_up_, true)) {
        char url[256] = {};
        natsConnection_GetConnectedUrl(nc_, url, sizeof url);
        std::cerr << "nats-bridge: connected to " << url << " as origin " << config_.origin
                  << std::endl;
        try {
            make_streams();
            start_imports();
        } catch (const std::exception& e) {
            std::cerr << "nats-bridge: " << e.what() << std::endl;
            bus_.stop();
            return;
        }
    }
    // What was sent while NATS was away is sent again (the server drops copies by id).
    const auto now = std::chrono::steady_clock::now();
    for (auto& [number, p] : pending_) {
        p.failed = true;
        p.retry_at = now;
    }
    check_pending();
    if (jetstream_inbox_ && !reading_jetstream_)
        read_jetstream();
}

void bridge::make_streams()
{
    for (const auto& s : config_.streams) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = s.name.c_str();
        std::vector<const char*> subjects;
        for (const auto& subject : s.subjects)
            subjects.push_back(subject.c_str());
        cfg.Subjects = subjects.data();
        cfg.SubjectsLen = static_cast<int>(subjects.size());
        cfg.Storage = js_FileStorage;
        jsStreamInfo* info = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        const auto st = js_AddStream(&info, js_, &cfg, nullptr, &code);
        jsStreamInfo_Destroy(info);
        // One that exists already is kept as it is (another bridge, or an operator, made it).
        if (st != NATS_OK && code != JSStreamNameExistErr)
            check(st, "stream " + s.name);
    }
}

void bridge::start_imports()
{
    for (const auto& route : config_.imports) {
        // Kept before anything points at it (a subscription's closure, the puller).
        auto& in = imports_.emplace_back(std::make_unique<import_state>());
        in->route = route;
        in->owner = this;
        if (route.mode == route_mode::core) {
            check(natsConnection_Subscribe(&in->sub, nc_, route.subject.c_str(),
                                           &bridge::on_core_message, in.get()),
                  "subscribe " + route.subject);
            // NATS holds this many for us (and 64 MiB at most), then drops
            // (counted: a slow consumer).
            check(natsSubscription_SetPendingLimits(in->sub, static_cast<int>(config_.core_pending),
                                                    64 << 20),
                  "pending limits");
        } else {
            jsSubOptions so;
            jsSubOptions_Init(&so);
            so.Stream = route.stream.c_str();
            so.Config.Durable = route.durable.c_str();
            so.Config.AckPolicy = js_AckExplicit;
            so.Config.AckWait =
                std::chrono::duration_cast<std::chrono::nanoseconds>(config_.ack_wait).count();
            so.Config.MaxAckPending = static_cast<int64_t>(route.batch) * 4;
            jsErrCode code = static_cast<jsErrCode>(0);
            check(js_PullSubscribe(&in->sub, js_, route.subject.c_str(), route.durable.c_str(),
                                   nullptr, &so, &code),
                  "pull consumer " + route.durable + " on stream " + route.stream);
            in->puller = std::thread([this, state = in.get()] { pull(*state); });
        }
        // The server has the interest before anyone is told it does.
        if (natsConnection_FlushTimeout(nc_, config_.ack_wait.count()) != NATS_OK)
            std::cerr << "nats-bridge: " << route.subject << ": the server did not confirm yet"
                      << std::endl;
        std::cerr << "nats-bridge: importing " << route.subject << " ("
                  << (route.mode == route_mode::core ? "core"
                                                     : "jetstream, durable " + route.durable)
                  << ")" << std::endl;
    }
}

// ---- exports --------------------------------------------------------------------------

void bridge::read_core()
{
    core_inbox_->async_read_batch(
        512, [this](boost::system::error_code ec, std::vector<received_record> batch) {
            if (ec) {
                if (ec != boost::asio::error::operation_aborted)
                    std::cerr << "nats-bridge: reading: " << ec.message() << std::endl;
                return bus_.stop();
            }
            for (const auto& r : batch)
                export_record(r, route_mode::core);
            read_core();
        });
}

void bridge::read_jetstream()
{
    // The publish window bounds what waits for acks: past it the slot keeps
    // the rest (and holds its writers back when full).
    const auto room =
        config_.publish_window - std::min<std::size_t>(pending_.size(), config_.publish_window);
    if (room == 0 || !up_ || stopping_) {
        reading_jetstream_ = false;
        return;
    }
    reading_jetstream_ = true;
    jetstream_inbox_->async_read_batch(
        room, [this](boost::system::error_code ec, std::vector<received_record> batch) {
            if (ec) {
                reading_jetstream_ = false;
                if (ec != boost::asio::error::operation_aborted)
                    std::cerr << "nats-bridge: reading: " << ec.message() << std::endl;
                return bus_.stop();
            }
            for (const auto& r : batch)
                export_record(r, route_mode::jetstream);
            read_jetstream();
        });
}

void bridge::export_record(const received_record& r, route_mode mode)
{
    const auto& from = r.sender();
    // What this bridge wrote came from NATS: sent back, it would loop.
    if (from.plugin == me_) {
        ++counters_.loops;
        return;
    }
    std::string why;
    auto subject = subject_of_name(from.name, why);
    if (!subject) {
        if (counters_.unmappable++ % 1000 == 0)
            std::cerr << "nats-bridge: not exported: " << why << std::endl;
        return;
    }
    // An envelope: its id and source make the message id, and a local
    // plugin's source says which host. Anything else goes as it is.
    std::string data = r.data, id;
    std::error_code ec;
    if (auto e = parse_envelope(r.data, ec); !ec) {
        // Written again only when its source changes: most records go as they came.
        if (auto source = exported_source(e.source, config_.origin); source != e.source) {
            e.source = std::move(source);
            data = serialize(e);
        }
        id = e.source + " " + e.id;
    }
    if (mode == route_mode::core) {
        natsMsg* msg = nullptr;
        natsMsg_Create(&msg, subject->c_str(), nullptr, data.data(), static_cast<int>(data.size()));
        if (core_seq_.size() >= max_senders && !core_seq_.contains(*subject)) {
            core_seq_.clear(); // numbered again, as if restarted: importers tell no gap
            epoch_ += "+";
        }
        natsMsgHeader_Set(msg, origin_header, config_.origin.c_str());
        natsMsgHeader_Set(msg, epoch_header, epoch_.c_str());
        natsMsgHeader_Set(msg, seq_header, std::to_string(++core_seq_[*subject]).c_str());
        // Numbered even when refused: the importer counts it as lost.
        if (natsConnection_PublishMsg(nc_, msg) == NATS_OK)
            ++counters_.exported;
        else
            ++counters_.export_drops;
        natsMsg_Destroy(msg);
        return;
    }
    if (id.empty()) // no envelope: this bridge's run and a number name it
        id = config_.origin + " " + epoch_ + " " + std::to_string(next_pending_ + 1);
    if (pending_ids_.contains(id)) { // the same event twice: the server would drop it
        ++counters_.duplicates;
        return;
    }
    const auto number = ++next_pending_;
    pending_ids_.emplace(id, number);
    pending_.emplace(
        number,
        pending_publish{std::move(id), std::move(*subject), std::move(data), {}, {}, false});
    send_jetstream(number);
    arm_pending_timer();
}

void bridge::send_jetstream(std::uint64_t number)
{
    auto it = pending_.find(number);
    if (it == pending_.end())
        return;
    auto& p = it->second;
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, p.subject.c_str(), nullptr, p.data.data(),
                   static_cast<int>(p.data.size()));
    natsMsgHeader_Set(msg, origin_header, config_.origin.c_str());
    natsMsgHeader_Set(msg, epoch_header, epoch_.c_str());
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = p.id.c_str();
    po.MaxWait = config_.ack_wait.count();
    p.sent = std::chrono::steady_clock::now();
    p.failed = false;
    const auto s = js_PublishMsgAsync(js_, &msg, &po);
    if (s == NATS_OK)
        return;
    natsMsg_Destroy(msg);        // still ours when the call failed
    if (s == NATS_MAX_PAYLOAD) { // never fits: dropped, said once in a while
        if (counters_.export_drops++ % 1000 == 0)
            std::cerr << "nats-bridge: a record to " << p.subject
                      << " is larger than the server takes; dropped" << std::endl;
        pending_ids_.erase(p.id);
        pending_.erase(it);
        return;
    }
    retry_later(p); // a full buffer, a connection down: again after a while
}

void bridge::retry_later(pending_publish& p)
{
    p.failed = true;
    p.retry_at = std::chrono::steady_clock::now() +
                 std::max<std::chrono::milliseconds>(config_.reconnect_wait, 100ms);
}

void bridge::on_publish_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* self)
{
    auto* b = static_cast<bridge*>(self);
    std::string id = header(msg, "Nats-Msg-Id");
    const bool ok = ack && !error;
    natsMsg_Destroy(msg);
    boost::asio::post(b->bus_.get_executor(),
                      [b, id = std::move(id), ok]() mutable { b->acked(std::move(id), ok); });
}

void bridge::acked(std::string id, bool ok)
{
    auto it = pending_ids_.find(id);
    if (it == pending_ids_.end())
        return; // a late ack of one already acked
    if (!ok) {  // sent again by check_pending, after a while (a missing stream fails at once)
        retry_later(pending_[it->second]);
        return;
    }
    pending_.erase(it->second);
    pending_ids_.erase(it);
    ++counters_.exported;
    if (!reading_jetstream_ && jetstream_inbox_)
        read_jetstream();
}

void bridge::check_pending()
{
    if (pending_.empty() || stopping_)
        return;
    const auto now = std::chrono::steady_clock::now();
    // Due: failed ones whose wait is over, and any without an ack for twice
    // ack_wait; in order, a bounded number per pass (the timer brings the rest).
    std::vector<std::uint64_t> due;
    if (up_)
        for (const auto& [number, p] : pending_)
            if ((p.failed && p.retry_at <= now) ||
                (!p.failed && now - p.sent > 2 * config_.ack_wait))
                if (due.push_back(number); due.size() >= 256)
                    break;
    for (const auto number : due) {
        ++counters_.republished;
        send_jetstream(number);
    }
    arm_pending_timer();
}

void bridge::arm_pending_timer()
{
    if (pending_timer_armed_ || pending_.empty() || stopping_)
        return;
    pending_timer_armed_ = true;
    pending_timer_.expires_after(std::min<std::chrono::milliseconds>(
        std::max<std::chrono::milliseconds>(config_.reconnect_wait, 100ms), 500ms));
    pending_timer_.async_wait([this](boost::system::error_code ec) {
        pending_timer_armed_ = false;
        if (!ec)
            check_pending();
    });
}

// ---- imports --------------------------------------------------------------------------

void bridge::on_core_message(natsConnection*, natsSubscription*, natsMsg* msg, void* state)
{
    auto& in = *static_cast<import_state*>(state);
    {
        // Held here while the local side is behind: NATS then keeps (up to
        // core_pending) and drops past it, counted as a slow consumer's.
        std::unique_lock guard(in.lock);
        in.room.wait(guard, [&] { return in.in_flight < core_in_flight || in.owner->stopping_; });
        ++in.in_flight;
    }
    boost::asio::post(in.owner->bus_.get_executor(), [&in, msg] { in.owner->deliver(in, msg); });
}

void bridge::pull(import_state& in)
{
    while (!stopping_) {
        std::uint32_t ask = 0;
        {
            // Pulls follow the local side: at most `batch` messages held,
            // the next pull only once some are written.
            std::unique_lock guard(in.lock);
            in.room.wait_for(guard, 200ms,
                             [&] { return in.in_flight < in.route.batch || stopping_; });
            if (stopping_)
                return;
            ask = in.route.batch - std::min(in.in_flight, in.route.batch);
        }
        if (ask == 0)
            continue;
        natsMsgList list{};
        jsErrCode code = static_cast<jsErrCode>(0);
        const auto s = natsSubscription_Fetch(&list, in.sub, static_cast<int>(ask), 1000, &code);
        if (s != NATS_OK) {
            natsMsgList_Destroy(&list);
            if (s != NATS_TIMEOUT)
                std::this_thread::sleep_for(config_.reconnect_wait);
            continue;
        }
        {
            std::lock_guard guard(in.lock);
            in.in_flight += static_cast<std::uint32_t>(list.Count);
        }
        for (int i = 0; i < list.Count; ++i) {
            natsMsg* msg = std::exchange(list.Msgs[i], nullptr); // ours now
            boost::asio::post(bus_.get_executor(), [this, &in, msg] { deliver(in, msg); });
        }
        natsMsgList_Destroy(&list);
    }
}

void bridge::release(import_state& in, natsMsg* msg, bool ack)
{
    // Acked only while the bridge runs: at its stop the server redelivers later.
    if (ack && in.route.mode == route_mode::jetstream && !stopping_) {
        natsMsg_Ack(msg, nullptr);
        ++counters_.acknowledged;
    }
    natsMsg_Destroy(msg);
    std::lock_guard guard(in.lock);
    --in.in_flight;
    in.room.notify_all();
}

void bridge::deliver(import_state& in, natsMsg* msg)
{
    const bool jetstream = in.route.mode == route_mode::jetstream;
    if (stopping_)
        return release(in, msg, false); // not acked: the server delivers it again
    // What this host exported, back by an import of the same subjects: not again.
    if (header(msg, origin_header) == config_.origin) {
        ++counters_.echoes;
        return release(in, msg, true);
    }
    std::uint64_t missed = 0;   // core: records before this one that never came
    std::uint64_t sequence = 0; // jetstream: its place in the stream, the same in every redelivery
    if (jetstream) {
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
            sequence = meta->Sequence.Stream;
            counters_.redelivered += meta->NumDelivered > 1;
        }
        jsMsgMetaData_Destroy(meta);
        if (auto it = written_.find(sequence); sequence && it != written_.end()) {
            ++counters_.duplicates;
            // Written already: acked again. Still being written (a redelivery
            // while the local slot held it past ack_wait): its write acks it.
            return release(in, msg, it->second);
        }
        if (sequence)
            remember(sequence, false);
    } else {
        // Gaps: numbers a sender's bridge gave that never came (lost while
        // NATS was away, or dropped for this slow consumer: that is counted
        // apart too, and its gaps show here when the next one comes).
        std::int64_t dropped = 0;
        natsSubscription_GetDropped(in.sub, &dropped);
        if (dropped > in.dropped_seen) {
            counters_.slow_drops += static_cast<std::uint64_t>(dropped - in.dropped_seen);
            in.dropped_seen = dropped;
        }
        const auto seq = header(msg, seq_header);
        if (!seq.empty()) {
            const auto key = header(msg, origin_header) + ' ' + header(msg, epoch_header) + ' ' +
                             natsMsg_GetSubject(msg);
            const std::uint64_t n = std::strtoull(seq.c_str(), nullptr, 10);
            if (last_seq_.size() >= max_senders && !last_seq_.contains(key))
                last_seq_.clear(); // senders' numbers start again here: no gap told once
            auto& last = last_seq_[key];
            if (last != 0 && n > last + 1)
                missed = n - last - 1;
            counters_.gaps += missed;
            last = n; // one lower: the sender numbered again (its table was full)
        }
    }
    std::string why;
    const auto name = name_of_subject(natsMsg_GetSubject(msg), why);
    if (!name) {
        if (counters_.refused++ % 1000 == 0)
            std::cerr << "nats-bridge: not imported: " << why << std::endl;
        if (sequence)
            written_[sequence] = true;
        return release(in, msg, true);
    }
    // The readers hear of the loss just before this record, as of a drop.
    if (missed)
        out_.report_lost(*name,
                         static_cast<std::uint32_t>(std::min<std::uint64_t>(missed, 0x7fffffff)));
    std::string data(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    out_.async_publish_record(
        *name, std::move(data),
        [this, &in, msg, sequence](boost::system::error_code ec, std::uint32_t) {
            written(in, msg, sequence, ec);
        });
}

void bridge::written(import_state& in, natsMsg* msg, std::uint64_t sequence,
                     boost::system::error_code ec)
{
    // The host went away, before or maybe after taking it (broken_pipe,
    // netname_deleted): not acked, so the server delivers it again.
    if (ec == error::broken_pipe || ec == error::netname_deleted ||
        ec == boost::asio::error::operation_aborted || stopping_) {
        if (sequence)
            written_.erase(sequence);
        return release(in, msg, false);
    }
    if (!ec)
        ++counters_.imported;
    else if (ec == error::file_not_found) // nobody here listens: as NATS does, not an error
        ++counters_.unheard;
    else
        ++counters_.refused;
    if (sequence)
        written_[sequence] = true;
    release(in, msg, true);
}

void bridge::remember(std::uint64_t sequence, bool written)
{
    written_.emplace(sequence, written);
    written_order_.push_back(sequence);
    if (written_order_.size() > remembered_sequences) {
        written_.erase(written_order_.front());
        written_order_.pop_front();
    }
}

// ---- status ---------------------------------------------------------------------------

json::object bridge::status() const
{
    const auto& c = counters_;
    json::object o;
    o["origin"] = config_.origin;
    o["connected"] = up_.load();
    if (nc_ && up_) {
        char url[256] = {};
        natsConnection_GetConnectedUrl(nc_, url, sizeof url);
        o["server"] = url;
    }
    json::array routes;
    for (const auto& e : config_.exports)
        routes.push_back(json::object{{"export", e.from.str()},
                                      {"subject", e.subject},
                                      {"mode", e.mode == route_mode::core ? "core" : "jetstream"}});
    for (const auto& i : config_.imports)
        routes.push_back(json::object{{"import", i.subject},
                                      {"mode", i.mode == route_mode::core ? "core" : "jetstream"}});
    o["routes"] = std::move(routes);
    o["pending"] = pending_.size();
    std::uint64_t held = 0; // imported messages taken from NATS, not written here yet
    for (const auto& in : imports_) {
        std::lock_guard guard(in->lock);
        held += in->in_flight;
    }
    o["in_flight"] = held;
    o["exported"] = c.exported;
    o["export_drops"] = c.export_drops;
    o["republished"] = c.republished;
    o["unmappable"] = c.unmappable;
    o["loops"] = c.loops;
    o["echoes"] = c.echoes;
    o["imported"] = c.imported;
    o["unheard"] = c.unheard;
    o["refused"] = c.refused;
    o["duplicates"] = c.duplicates;
    o["redelivered"] = c.redelivered;
    o["acknowledged"] = c.acknowledged;
    o["gaps"] = c.gaps;
    o["slow_drops"] = c.slow_drops;
    o["disconnects"] = c.disconnects;
    o["reconnects"] = c.reconnects;
    return o;
}

void bridge::publish_status()
{
    if (stopping_)
        return;
    const std::string topic = "slotbus/nats-bridge/" + me_ + "/status";
    auto e = make_envelope(out_.source(), "slotbus.nats_bridge.status",
                           publisher::subject_of(topic), status());
    boost::asio::post(control_.get_executor(), [this, topic, text = serialize(e)]() mutable {
        status_out_.async_publish_record(topic, std::move(text),
                                         [](boost::system::error_code, std::uint32_t) {});
    });
    status_timer_.expires_after(config_.status_interval);
    status_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            publish_status();
    });
}

void bridge::stop()
{
    if (stopping_.exchange(true))
        return;
    status_timer_.cancel();
    pending_timer_.cancel();
    for (auto& in : imports_) {
        {
            std::lock_guard guard(in->lock);
            in->room.notify_all();
        }
        if (in->puller.joinable())
            in->puller.join();
    }
    if (js_) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        js_PublishAsyncComplete(js_, &po); // what is in flight gets its chance
    }
    for (auto& in : imports_)
        if (in->sub) {
            // A durable consumer stays (libnats 3.4 deletes one it made only on
            // unsubscribe): at the next start the import goes on where it was.
            if (in->route.mode == route_mode::core)
                natsSubscription_Unsubscribe(in->sub);
            natsSubscription_Destroy(in->sub);
            in->sub = nullptr;
        }
    if (js_)
        jsCtx_Destroy(std::exchange(js_, nullptr));
    if (nc_) {
        natsConnection_Close(nc_);
        natsConnection_Destroy(std::exchange(nc_, nullptr));
    }
    if (options_)
        natsOptions_Destroy(std::exchange(options_, nullptr));
}

} // namespace slotbus::bridge
