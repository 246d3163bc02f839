#include "core.hpp"

#include "random_token.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <bit>
#include <deque>
#include <unistd.h>

namespace slotbus::bus {

struct core::handle_entry {
    std::unique_ptr<reader> rd; // set for a reader handle
    // A writer handle binds to a name, not to one slot. Where a write goes —
    // the slot of that name and every slot subscribed to a matching pattern —
    // is worked out once and kept until slots or subscriptions change.
    std::string key;
    bool broadcast = false; // at most 424 bytes a record; opens with no receiver
    bool publish = false;   // a publisher's: a record nobody receives is 0 delivered, not an error
    // A broadcast writer's records also go out to the hosts of this domain
    // (broadcaster); `foreign`: a domain not this host's, so no local slot has them.
    std::string domain;
    bool foreign = false;
    slot* direct = nullptr;
    std::vector<slot*> targets;
    std::vector<const topic_types*> declared; // type rules that match the name
    std::uint64_t routed_epoch = ~std::uint64_t{0};
    origin_ptr from;          // a writer's stamp: who writes, to which name
    lane_ptr lane;            // a writer's lane, once it asked for one
    lane_ptr retiring;        // its last lane, closed: taken until the writer says it is done
    std::uint64_t remote = 0; // a writer's destination on another host (remote_hosts)
    bool created = false;     // a reader handle of the slot its session created
    bool revoked = false;     // closed by a policy reload: its operations are denied
};

struct core::session {
    session_id id = 0;
    identity who; // decided by the host: the kernel's word, a plugin's token
    std::shared_ptr<const identity> shared_who; // `who` for its subscriptions, made at the first
    std::uint32_t pgid = 0; // the peer's process group, for a plugin token's check
    std::string client_name;
    std::uint32_t claimed_pid = 0; // the hello's word, shown only as a claim
    bool greeted = false;
    bool touched = false;
    bool resume = false;
    bool output_paused = false; // out is over max_outbox: see reader::paused
    // Reader handles owed a timeout_changed: one notice each, with the slot's
    // timeout when it goes out, however often it changed (bounded by handles).
    std::vector<std::uint32_t> owed_timeouts;
    byte_buffer out;
    record_list_builder pushed{frame_type::records};           // over out
    record_list_builder pushed_lane{frame_type::records_lane}; // over out too
    std::vector<attached_fd> out_fds; // fds that go with bytes of out (lane_open frames)
    // Lanes: it asked for them (a local client that reads fds), the lanes
    // its writers hold, and those whose fds it was sent as a reader.
    bool lanes = false;
    std::uint32_t writer_lanes = 0;
    std::uint64_t writer_lane_bytes = 0;
    std::vector<std::uint32_t> reader_lanes;
    std::vector<std::uint32_t> owed_releases; // its lanes with a release to tell
    ack_batch acks;
    bool acks_due = false; // a prompt write is among the results not yet sent
    // Results behind the first a remote host still owes, by write frame, in
    // order: the front goes to acks once all its records have theirs.
    struct deferred_entry {
        std::vector<ack_run> results; // a remote frame's, one per record; a local run
        std::uint32_t unresolved = 0;
    };
    std::deque<deferred_entry> deferred;
    std::uint64_t deferred_first = 0; // the entry number of deferred.front()
    bool waits_for_results = false;   // held back at max_deferred_entries
    std::size_t held_posts = 0;       // bytes of posted writes whose results wait
    // Records of the write frame it is held at that were broadcast already:
    // the rate lets a large frame go in parts, and it is fed again for the rest.
    std::uint32_t frame_sent = 0;
    std::vector<std::string> tokens; // duplicate tokens it issued, not used or gone yet
    std::uint64_t budget = 0;        // budgets of the slots it created and that live
    std::uint32_t subscriptions = 0; // patterns it subscribed and that stand
    std::unordered_map<std::uint32_t, handle_entry> handles;
    // The handle of the last write: a writer mostly writes through one.
    // (Elements of an unordered_map stay put when it rehashes.)
    std::uint32_t last_write_handle = 0;
    handle_entry* last_write_entry = nullptr;
    // Origins its readers were told of (bounded: past max_origins the table
    // starts again, with an origins_forgotten frame), and the last one used.
    std::unordered_map<const origin*, std::pair<std::uint32_t, origin_ptr>> origins;
    std::uint32_t next_origin = 1;
    const origin* last_origin = nullptr;
    std::uint32_t last_origin_id = 0;
    // For the "connections" answer: what it moved, and why it was closed.
    clock::time_point connected_at{};
    std::uint64_t records_in = 0, bytes_in = 0, bytes_out = 0;
    std::string fatal_why; // the first fatal frame the host sent it
};

namespace {
constexpr std::size_t max_origins = 4096; // per connection
}

core::core(core_limits limits)
    : limits_(std::move(limits)), policy_(std::make_shared<const policy>(::geteuid()))
{
    limits_.host_name = fold_case(limits_.host_name);
    if (limits_.min_slot_budget == 0)
        limits_.min_slot_budget = std::uint64_t{limits_.max_record_size} + 4 + slot::record_cost;
    limits_.domain = fold_case(limits_.domain);
}

core::~core()
{
    // Records and lanes go with the slots and sessions below: nobody is
    // told any more.
    for (auto& [id, l] : lanes_)
        l->detach();
}

session_id core::connect(peer_info peer)
{
    auto s = std::make_unique<session>();
    s->id = next_session_++;
    s->who.uid = peer.uid;
    s->who.gid = peer.gid;
    s->who.pid = peer.pid;
    s->who.groups = std::move(peer.groups);
    s->who.client = std::move(peer.client);
    s->pgid = peer.pgid;
    s->connected_at = now_();
    ++totals_.connections;
    const auto id = s->id;
    sessions_.emplace(id, std::move(s));
    return id;
}

session_id core::connect_peer(std::string_view host)
{
    const auto id = connect(
        {.pid = 0, .uid = nobody_id, .gid = nobody_id, .pgid = 0, .groups = {}, .client = {}});
    session& s = *sessions_.at(id);
    s.who.host = fold_case(host);
    s.client_name = "host " + s.who.host;
    s.greeted = true;
    return id;
}

session_id core::connect_domain(std::string_view domain)
{
    const auto id = connect(
        {.pid = 0, .uid = nobody_id, .gid = nobody_id, .pgid = 0, .groups = {}, .client = {}});
    session& s = *sessions_.at(id);
    s.who.domain = fold_case(domain);
    s.client_name = "domain " + s.who.domain;
    s.greeted = true;
    return id;
}

std::error_code core::open_inbound(session_id id, std::uint32_t handle, std::string_view host,
                                   const slot_name& name)
{
    session& s = *sessions_.at(id);
    if (!allowed(s, right::write, literal_pattern(name.key())))
        return error::access_denied;
    if (auto ec = handle_check(s, handle))
        return ec;
    auto& entry = s.handles[handle];
    entry.key = name.key();
    entry.broadcast = true;
    entry.from =
        origin_ptr(new origin{nobody_id, 0, {}, name.path(), std::string(host), {}, s.who.domain});
    return {};
}

std::uint32_t core::deliver_inbound(session_id id, std::uint32_t handle, byte_span record,
                                    std::uint32_t missed, std::error_code& ec)
{
    ec.clear();
    session& s = *sessions_.at(id);
    handle_entry* h = find_handle(s, handle);
    if (!h || h->revoked) {
        ec = error::access_denied;
        return 0;
    }
    route(*h);
    ++totals_.writes;
    if (!h->declared.empty() && !accepted(h->declared, record)) {
        ++totals_.write_errors;
        ec = error::invalid_data;
        return 0;
    }
    const auto size = record.size();
    const record_ptr shared = size > record_queue::inline_limit ? record::make(record) : nullptr;
    const auto push = [this](reader& r, const auto&... records) { emit(r, records...); };
    std::uint32_t delivered = 0;
    for (slot* t : h->targets) {
        t->lose(missed);
        const auto max = t->config().max_message_size;
        const bool room =
            (max == 0 || size <= max) &&
            (t->has_room_for(4 + size) ||
             (t->config().overflow == overflow_policy::drop_oldest && t->make_room(4 + size)));
        if (!room) {
            t->drop_newest();
            continue;
        }
        t->enqueue(record, shared.get(), h->from.get(), push);
        ++delivered;
    }
    totals_.deliveries += delivered;
    return delivered;
}

void core::close_inbound(session_id id, std::uint32_t handle)
{
    if (auto it = sessions_.find(id); it != sessions_.end())
        close_handle(*it->second, handle);
}

void core::disconnect(session_id id, std::string_view reason)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        return;
    session& s = *it->second;
    remember_closed(s, s.fatal_why.empty() ? reason : std::string_view(s.fatal_why));
    if (fed_ == &s)
        fed_ = nullptr;
    if (emitted_ == &s)
        emitted_ = nullptr;
    std::vector<std::uint32_t> open;
    for (const auto& [handle, entry] : s.handles)
        open.push_back(handle);
    for (auto handle : open)
        close_handle(s, handle);
    sessions_.erase(it);
    std::erase(touched_, id);
}

const byte_buffer& core::outbox(session_id id) const
{
    return sessions_.at(id)->out;
}

bool core::greeted(session_id id) const
{
    return sessions_.at(id)->greeted;
}

bool core::has_output(session_id id) const
{
    const session& s = *sessions_.at(id);
    return !s.out.empty() || !s.owed_timeouts.empty() || !s.owed_releases.empty();
}

void core::take_output(session_id id, byte_buffer& into)
{
    std::vector<attached_fd> dropped; // none: such a session asked for no lanes
    take_output(id, into, dropped);
}

void core::take_output(session_id id, byte_buffer& into, std::vector<attached_fd>& fds)
{
    session& s = *sessions_.at(id);
    flush_acks(s); // they ride along: no frame, and no wake-up of the client, of their own
    flush_notices(s);
    for (auto lane_id : s.owed_releases)
        if (auto it = lanes_.find(lane_id); it != lanes_.end())
            if (std::uint64_t position = 0; it->second->take_release(position))
                encode(s.out, lane_release_frame{lane_id, position});
    s.owed_releases.clear();
    into.clear();
    s.bytes_out += s.out.size();
    into.swap(s.out);
    fds.clear();
    fds.swap(s.out_fds);
    s.pushed.reset();
    s.pushed_lane.reset();
    if (s.output_paused) { // its readers may be pushed to again
        s.output_paused = false;
        for (auto& [handle, entry] : s.handles)
            if (entry.rd)
                pump(*entry.rd->target);
    }
}

std::vector<session_id> core::take_touched()
{
    std::vector<session_id> out;
    out.swap(touched_);
    for (auto id : out)
        if (auto it = sessions_.find(id); it != sessions_.end())
            it->second->touched = false;
    return out;
}

bool core::take_resume(session_id id)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end() || !it->second->resume)
        return false;
    it->second->resume = false;
    return true;
}

void core::touch(session& s)
{
    if (!s.touched) {
        s.touched = true;
        touched_.push_back(s.id);
    }
}

void core::end_batch(session_id id)
{
    session& s = *sessions_.at(id);
    const bool held_enough = s.held_posts >= max_held_post_bytes || s.acks.runs() >= max_held_runs;
    if (!s.acks.empty() && (s.acks_due || held_enough)) {
        flush_acks(s);
        touch(s);
    }
}

void core::flush_notices(session& s)
{
    for (auto handle : s.owed_timeouts)
        if (auto* h = find_handle(s, handle); h && h->rd && h->rd->timeout_owed) {
            h->rd->timeout_owed = false;
            encode(s.out, timeout_changed_frame{handle, h->rd->target->config().read_timeout});
        }
    s.owed_timeouts.clear();
}

void core::add_result(session& s, std::uint32_t error, std::uint32_t delivered,
                      std::uint32_t writes)
{
    if (s.deferred.empty())
        s.acks.add(error, delivered, writes);
    else
        s.deferred.push_back({{{writes, error, delivered}}, 0});
}

void core::remote_results(write_ticket ticket, std::uint32_t index, std::uint32_t count,
                          std::uint32_t error, std::uint32_t delivered)
{
    auto it = sessions_.find(ticket.session);
    if (it == sessions_.end()) // the writer left: its results go nowhere
        return;
    session& s = *it->second;
    if (ticket.entry < s.deferred_first || ticket.entry - s.deferred_first >= s.deferred.size())
        return;
    auto& entry = s.deferred[ticket.entry - s.deferred_first];
    for (std::uint32_t i = index; i < index + count && i < entry.results.size(); ++i)
        if (entry.results[i].count == 0) { // each record has one result, once
            entry.results[i] = {1, error, delivered};
            --entry.unresolved;
            totals_.write_errors += error != 0;
            totals_.deliveries += delivered;
        }
    bool done = false;
    while (!s.deferred.empty() && s.deferred.front().unresolved == 0) {
        for (const auto& run : s.deferred.front().results)
            s.acks.add(run.error, run.delivered, run.count);
        if (s.acks.runs() >= max_held_runs)
            flush_acks(s);
        s.deferred.pop_front();
        ++s.deferred_first;
        done = true;
    }
    if (done) {
        flush_acks(s); // the writer may be waiting on any of them: they go now
        touch(s);
        if (s.waits_for_results && s.deferred.size() < max_deferred_entries / 2) {
            s.waits_for_results = false;
            s.resume = true;
        }
    }
}

void core::wake(session_id id)
{
    if (auto it = sessions_.find(id); it != sessions_.end()) {
        it->second->resume = true;
        touch(*it->second);
    }
}

void core::flush_acks(session& s)
{
    s.acks.flush_to(s.out);
    s.acks_due = false;
    s.held_posts = 0;
}

template <class Message> void core::send(session& s, const Message& m)
{
    // Answers never overtake the results of writes sent before them, nor a
    // change of timeout made before them (a poll's answer relies on that).
    flush_acks(s);
    flush_notices(s);
    encode(s.out, m);
    touch(s);
}

void core::reply(session& s, std::uint32_t request, std::error_code ec, std::uint32_t handle,
                 std::uint32_t a, std::uint32_t b, std::string_view text)
{
    send(s, result_frame{request, static_cast<std::uint32_t>(ec.value()), handle, a, b, text});
}

feed_result core::fatal(session& s, error e, std::string_view why)
{
    if (s.fatal_why.empty())
        s.fatal_why = "protocol error (" + std::to_string(static_cast<std::uint32_t>(e)) +
                      "): " + std::string(why.substr(0, 200));
    send(s, fatal_frame{static_cast<std::uint32_t>(e), why});
    return feed_result::close;
}

void core::reject(session_id id, std::string_view why)
{
    fatal(*sessions_.at(id), error::invalid_data, why);
}

feed_result core::feed(session_id id, const frame_view& frame)
{
    // Frames come in batches from one connection: look it up once per batch.
    if (!fed_ || fed_->id != id)
        fed_ = sessions_.at(id).get();
    session& s = *fed_;
    const auto result = dispatch(s, frame);
    // A frame held back is fed again: it counts once, when it is taken.
    if (result != feed_result::blocked && sessions_.count(id))
        s.bytes_in += frame_header_size + frame.body.size();
    return result;
}

feed_result core::dispatch(session& s, const frame_view& frame)
{
    if (!s.greeted && frame.type != frame_type::hello)
        return fatal(s, error::invalid_data, "the first frame must be hello");
    switch (frame.type) {
    case frame_type::hello:
        return on_hello(s, frame.body);
    case frame_type::create:
        return on_create(s, frame.body);
    case frame_type::open:
        return on_open(s, frame.body);
    case frame_type::close:
        return on_close(s, frame.body);
    case frame_type::write:
        return on_write(s, frame.body, true);
    case frame_type::post:
        return on_write(s, frame.body, false);
    case frame_type::lost:
        return on_lost(s, frame.body);
    case frame_type::lane_request:
        return on_lane_request(s, frame.body);
    case frame_type::lane_mapped:
        return on_lane_mapped(s, frame.body);
    case frame_type::lane_closed:
        return on_lane_closed(s, frame.body);
    case frame_type::write_lane:
        return on_write_lane(s, frame.body, true);
    case frame_type::post_lane:
        return on_write_lane(s, frame.body, false);
    case frame_type::info:
        return on_info(s, frame.body);
    case frame_type::set_timeout:
        return on_set_timeout(s, frame.body);
    case frame_type::read_report:
        return on_read_report(s, frame.body);
    case frame_type::poll:
        return on_poll(s, frame.body);
    case frame_type::duplicate:
        return on_duplicate(s, frame.body);
    case frame_type::subscribe:
        return on_subscribe(s, frame.body);
    case frame_type::unsubscribe:
        return on_unsubscribe(s, frame.body);
    case frame_type::ping: {
        ping_frame m;
        if (!decode(frame.body, m))
            return fatal(s, error::invalid_data, "malformed ping");
        send(s, pong_frame{m.nonce});
        return feed_result::next;
    }
    case frame_type::attach:
        return on_attach(s, frame.body);
    case frame_type::admin:
        return on_admin(s, frame.body);
    default:
        return fatal(s, error::invalid_data, "not a frame a client sends");
    }
}

feed_result core::on_hello(session& s, byte_span body)
{
    hello_frame m;
    if (s.greeted || !decode(body, m) || m.magic != protocol_magic)
        return fatal(s, error::invalid_data, "malformed or repeated hello");
    if (m.min_version > protocol_version || m.max_version < protocol_version)
        return fatal(s, error::not_supported,
                     "no protocol version in common; the host speaks " +
                         std::to_string(protocol_version) + " (a client of an older SDK?)");
    if (!m.token.empty()) {
        auto plugin = plugin_tokens_.find(std::string(m.token));
        if (plugin == plugin_tokens_.end())
            return fatal(s, error::invalid_handle,
                         "unknown plugin token (the plugin was restarted or removed?)");
        // Bound to the process the supervisor launched: a copy elsewhere is
        // not the plugin, whatever its uid.
        const auto pid = plugin->second.pid;
        if (s.who.pid == 0) // TCP and TLS carry no pid to bind a token to
            return fatal(s, error::access_denied,
                         "a plugin token is taken on the host's Unix socket only");
        if (pid == 0 || (s.who.pid != pid && s.pgid != pid))
            return fatal(s, error::access_denied,
                         "this plugin token belongs to another process (pid " +
                             std::to_string(pid) + "); a copied token is refused");
        s.who.plugin = plugin->second.plugin;
        s.who.permissions = plugin->second.permissions;
    }
    s.claimed_pid = m.pid; // a claim: the kernel's pid stays the identity
    // Shown in listings (JSON): a claim, kept to valid text of a sane length.
    s.client_name = to_valid_utf8(m.client_name.substr(0, 256));
    s.greeted = true;
    // Lanes for a local client that reads fds (TCP and TLS carry no pid).
    s.lanes =
        (m.features & hello_lanes) && s.who.pid != 0 && make_lane_ && limits_.lane_threshold != 0;
    send(s, welcome_frame{protocol_version, limits_.max_record_size,
                          static_cast<std::uint32_t>(limits_.max_frame_size()), s.id,
                          s.lanes ? limits_.lane_threshold : 0,
                          s.lanes ? limits_.max_lane_record : 0, limits_.host_name, s.who.plugin});
    return feed_result::next;
}

feed_result core::on_create(session& s, byte_span body)
{
    create_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed create");
    std::error_code ec;
    auto name = slot_name::parse(m.name, ec);
    if (!ec && name.scope() != name_scope::local)
        ec = error::invalid_name; // a server creates only `\\.\` names
    if (!ec)
        ec = handle_check(s, m.handle);
    if (!ec && !allowed(s, right::create, literal_pattern(name.key())))
        ec = error::access_denied;
    if (!ec && names_.find(name.key()))
        ec = error::already_exists;
    if (!ec && m.overflow > static_cast<std::uint32_t>(overflow_policy::drop_newest))
        ec = error::invalid_parameter;
    if (!ec && names_.size() >= limits_.max_slots)
        ec = error::too_many_open_files;
    // A budget holds at least one record of the host's largest size (a
    // smaller one would hold writers of large records back on every record).
    const auto budget =
        std::max(m.byte_budget ? std::min<std::uint64_t>(m.byte_budget, limits_.max_slot_budget)
                               : limits_.default_slot_budget,
                 limits_.min_slot_budget);
    if (!ec && (s.budget + budget > limits_.max_connection_budget ||
                total_budget_ + budget > limits_.max_total_budget))
        ec = error::not_enough_quota;
    if (ec) {
        reply(s, m.request_id, ec);
        return feed_result::next;
    }
    slot_config config;
    config.max_message_size = m.max_message_size;
    config.read_timeout = m.read_timeout;
    config.byte_budget = budget;
    config.push_bytes = limits_.push_bytes;
    config.overflow = static_cast<overflow_policy>(m.overflow);
    slot& created = names_.insert(std::make_unique<slot>(std::move(name), config));
    created.owner = {s.id, s.who.pid, s.who.uid, s.claimed_pid, s.client_name, s.who.plugin};
    s.budget += budget; // charged to its creator while it lives
    total_budget_ += budget;
    ++totals_.slots_created;
    add_reader(s, created, m.handle);
    s.handles[m.handle].created = true;
    reply(s, m.request_id, {}, m.handle, config.read_timeout, config.max_message_size);
    return feed_result::next;
}

feed_result core::on_open(session& s, byte_span body)
{
    open_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed open");
    std::error_code ec;
    auto name = slot_name::parse(m.name, ec);
    bool broadcast = name.scope() == name_scope::broadcast; // `\\*\`: this host's domain
    bool remote = false, foreign = false;
    std::string server = broadcast ? limits_.domain : std::string();
    if (!ec && name.scope() == name_scope::remote) {
        server = fold_case(name.server());
        if (server == limits_.domain)
            broadcast = true;
        else if (server != limits_.host_name && server != "localhost")
            remote = true;
    }
    // Records that came over a link go to this host's slots only: no relay.
    if (remote && !s.who.host.empty())
        ec = error::bad_netpath;
    // A broadcast cannot know its receivers, so it opens whether or not one
    // exists; a reconnecting client rebinds its writers the same way. Whether
    // another host has the slot is that host's to say, per write.
    const bool publish = (m.flags & open_publish) != 0; // a topic: nobody listening is fine
    const bool rebind = broadcast || remote || publish || (m.flags & open_rebind) != 0;
    // Before whether it exists: a name one may not write to tells nothing.
    if (!ec && !allowed(s, right::write, literal_pattern(name.key())))
        ec = error::access_denied;
    if (!ec && !rebind && !names_.find(name.key()) && !subscriptions_.any_match(name.key()))
        ec = error::file_not_found;
    if (!ec)
        ec = handle_check(s, m.handle);
    std::uint64_t destination = 0;
    if (!ec && remote) {
        destination = remote_ ? remote_->acquire(server, name, ec) : 0;
        if (!ec && !destination)
            ec = error::bad_netpath;
        // No peer of that name: it may be another domain, to broadcast to.
        if (ec == error::bad_netpath && s.who.host.empty() && broadcaster_ &&
            broadcaster_->knows_domain(server)) {
            ec.clear();
            remote = false;
            broadcast = foreign = true;
        }
    }
    if (ec) {
        reply(s, m.request_id, ec);
        return feed_result::next;
    }
    auto& entry = s.handles[m.handle];
    entry.key = name.key();
    entry.broadcast = broadcast;
    entry.publish = publish;
    // What came over a link or a broadcast is not sent on: no relay.
    if (broadcast && broadcaster_ && s.who.host.empty() && s.who.domain.empty())
        entry.domain = server;
    entry.foreign = foreign;
    entry.remote = destination;
    entry.from = origin_ptr(
        new origin{s.who.uid, s.who.pid, s.who.plugin, name.path(), s.who.host, s.who.client, {}});
    reply(s, m.request_id, {}, m.handle);
    return feed_result::next;
}

feed_result core::on_close(session& s, byte_span body)
{
    close_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed close");
    if (!find_handle(s, m.handle)) {
        reply(s, m.request_id, error::invalid_handle);
        return feed_result::next;
    }
    close_handle(s, m.handle); // a revoked one too: its number is free again
    reply(s, m.request_id, {});
    return feed_result::next;
}

namespace {

// The records of a write frame, as write_records takes them: a record list
// that came over the socket, copied into the queues (or stored once, when
// large); listable, so the common case queues the whole list at once.
struct socket_records {
    static constexpr bool listable = true;
    byte_span list;
    record_list_summary checked{};

    [[nodiscard]] std::size_t wire() const noexcept { return list.size(); }
    bool check()
    {
        checked = check_record_list(list);
        return checked.valid;
    }
    [[nodiscard]] std::uint32_t count() const noexcept { return checked.count; }
    void discard() noexcept {}
    template <class F> void for_each(F&& f)
    {
        for_each_checked_record(list, [&](byte_span bytes) {
            f(bytes, [&] {
                return bytes.size() > record_queue::inline_limit ? record::make(bytes) : nullptr;
            });
        });
    }
};

// The records of a write_lane frame: descriptors into the writer's lane,
// each checked against what the host knows of the lane (never read from
// it); each record is stored by reference to its place in the lane.
struct lane_records {
    static constexpr bool listable = false;
    lane& into;
    byte_span descriptors;
    std::uint32_t max_length;
    std::uint32_t described = 0;
    std::size_t bytes = 0;

    [[nodiscard]] std::size_t wire() const noexcept { return bytes; }
    // Sums their sizes for admission; whether they lie is check()'s.
    void measure()
    {
        for_each_lane_descriptor(descriptors, [&](lane_descriptor d) {
            ++described;
            bytes += 4 + std::size_t{d.length};
        });
    }
    bool check()
    {
        std::uint64_t end = into.end();
        bool ok = descriptors.size() % lane_descriptor_size == 0 && described > 0;
        for_each_lane_descriptor(
            descriptors, [&](lane_descriptor d) { ok = ok && into.fits(d, max_length, end); });
        return ok;
    }
    [[nodiscard]] std::uint32_t count() const noexcept { return described; }
    // Results without delivery: the records are taken and let go at once,
    // so the writer's next descriptor is where it expects.
    void discard()
    {
        for_each([](byte_span, auto&& share) { (void)share(); });
    }
    template <class F> void for_each(F&& f)
    {
        for_each_lane_descriptor(descriptors, [&](lane_descriptor d) {
            const record_ptr r = record::in_lane(into, into.take(d), d.position);
            f(r->bytes(), [&] { return r; });
        });
    }
};

} // namespace

feed_result core::on_write(session& s, byte_span body, bool prompt)
{
    write_frame m;
    if (!decode(body, m)) {
        if (prompt)
            s.acks_due = true;
        return fatal(s, error::invalid_data, "malformed write");
    }
    handle_entry* h =
        m.handle == s.last_write_handle ? s.last_write_entry : find_handle(s, m.handle);
    if (h && !h->rd && !h->revoked && h->remote) {
        if (prompt)
            s.acks_due = true;
        else
            s.held_posts += body.size();
        if (s.deferred.size() >= max_deferred_entries) { // remote results owed: wait for them
            s.waits_for_results = true;
            if (!prompt)
                s.held_posts -= body.size();
            return feed_result::blocked;
        }
        return write_remote(s, *h, body, m, prompt);
    }
    socket_records records{m.records.bytes};
    return write_records(s, m.handle, records, body, prompt);
}

feed_result core::on_write_lane(session& s, byte_span body, bool prompt)
{
    write_lane_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed write_lane");
    handle_entry* h = find_handle(s, m.handle);
    lane* into = nullptr;
    if (h && h->lane && h->lane->id() == m.lane)
        into = h->lane.get();
    else if (h && h->retiring && h->retiring->id() == m.lane)
        into = h->retiring.get();
    if (!into || !into->sealed)
        return fatal(s, error::invalid_data, "write_lane names no mapped lane of its handle");
    lane_records records{*into, m.descriptors.bytes, limits_.max_lane_record};
    records.measure();
    return write_records(s, m.handle, records, body, prompt);
}

template <class Records>
feed_result core::write_records(session& s, std::uint32_t handle, Records& records, byte_span body,
                                bool prompt)
{
    if (prompt)
        s.acks_due = true;
    else
        s.held_posts += body.size();
    if (s.deferred.size() >= max_deferred_entries) { // remote results owed: wait for them
        s.waits_for_results = true;
        if (!prompt) // counted when it is fed again
            s.held_posts -= body.size();
        return feed_result::blocked;
    }
    // Every record of the frame is a write with its own result.
    auto result = [&](std::error_code ec, std::uint32_t delivered, std::uint32_t writes = 1) {
        add_result(s, static_cast<std::uint32_t>(ec.value()), delivered, writes);
        totals_.writes += writes;
        s.records_in += writes;
        totals_.write_errors += ec ? writes : 0;
        totals_.deliveries += delivered;
        return feed_result::next;
    };
    handle_entry* h = handle == s.last_write_handle ? s.last_write_entry : find_handle(s, handle);
    if (h) {
        s.last_write_handle = handle;
        s.last_write_entry = h;
    }
    const auto push = [this](reader& r, const auto&... queued) { emit(r, queued...); };
    origin* from = h ? h->from.get() : nullptr;
    const bool may_write = h && !h->rd && !h->revoked; // a server's own handle does not write
    if (may_write)
        route(*h);
    // A receiver writing to itself could wait on itself forever.
    const bool to_itself = may_write && h->direct && reads(s, *h->direct);
    const auto wire = records.wire(); // what the frame's records take in a slot
    if (may_write) {
        // The common case: one receiving slot, nothing to refuse and room for
        // the whole frame. Its list is queued at once, with one result, and
        // checked as it is copied (its lengths walked once); a list that fails
        // that check (a lie, or a record too large to copy in or for the slot)
        // is taken out again and goes the long way.
        slot* t = h->targets.size() == 1 && h->domain.empty() ? h->targets.front() : nullptr;
        if constexpr (Records::listable) {
            if (t && h->declared.empty() && !to_itself && t->has_room_for(wire)) {
                std::size_t limit = record_queue::inline_limit;
                if (const auto max = t->config().max_message_size; max != 0)
                    limit = std::min<std::size_t>(limit, max);
                if (h->broadcast)
                    limit = std::min(limit, max_broadcast_size);
                if (const auto count = t->enqueue_list(
                        records.list, static_cast<std::uint32_t>(limit), from, push))
                    return result({}, 1, count);
            }
        }
        // A full slot that holds writers back stops the frame before any copy
        // is queued, so its records go everywhere or (for now) nowhere; an
        // empty slot takes a whole frame. Its lengths are checked when it goes
        // on. The writer's own subscriptions never hold it back: they drop
        // instead; nor does a slot marked slow (see tick()), nor any slot a
        // broadcast: on every host it is a datagram, which cannot wait.
        ++admit_stamp_;
        for (slot* target : h->targets) {
            if (target->config().overflow != overflow_policy::block || target->slow ||
                reads(s, *target) || !h->domain.empty())
                continue;
            if (!target->has_room_for(wire)) {
                auto& blocked = target->blocked_writers;
                if (!target->holding) { // it starts holding writers back: the clock runs
                    target->holding = true;
                    target->holding_since = now_();
                    holding_.push_back(target);
                }
                auto held =
                    std::find_if(blocked.begin(), blocked.end(),
                                 [&](const blocked_writer& b) { return b.session == s.id; });
                if (held == blocked.end())
                    blocked.push_back({s.id, wire});
                else
                    held->need = wire;
                if (!prompt) // counted when it is fed again
                    s.held_posts -= body.size();
                return feed_result::blocked;
            }
            target->admit_stamp = admit_stamp_; // room for all of the frame
        }
    }
    // The whole list is checked before any record counts.
    if (!records.check())
        return fatal(s, error::invalid_data,
                     Records::listable ? "malformed write" : "a lane descriptor that lies");
    const auto count = records.count();
    const std::uint32_t first = std::exchange(s.frame_sent, 0); // had their results
    if constexpr (!Records::listable) // by lane: counted once, past every wait
        totals_.lane_writes += count - first;
    if (!h)
        return result(error::invalid_handle, 0, count - first);
    if (!may_write) {
        records.discard();
        return result(error::access_denied, 0, count - first);
    }
    slot* direct = h->direct;
    // A broadcast goes out whatever this host's slots do with it: its reader
    // writing to it, or a local slot too small, only miss their own copy.
    const bool broadcasting = !h->domain.empty();
    // It goes under the host's sending rate, as many of the frame's records
    // as that allows; for the rest the writer waits, as for a full slot.
    std::uint32_t end = count;
    if (broadcasting)
        end = first + broadcaster_->reserve(s.id, count - first);
    std::uint32_t at = 0;
    auto fits = [](const slot* t, std::size_t size) {
        const auto max = t->config().max_message_size;
        return max == 0 || size <= max;
    };
    records.for_each([&](byte_span bytes, auto&& share) {
        if (const auto n = at++; n < first || n >= end)
            return;
        const auto size = bytes.size();
        // Refused records fail alone; the writer stays.
        std::error_code refused;
        if (h->broadcast && size > max_broadcast_size)
            refused = error::bad_netpath;
        else if (h->targets.empty() && !broadcasting && !h->publish)
            refused = error::file_not_found;
        else if (!h->declared.empty() && !accepted(h->declared, bytes))
            refused = error::invalid_data;
        else if (to_itself && !broadcasting)
            refused = error::access_denied;
        else if (direct && !broadcasting && !fits(direct, size))
            refused = error::message_exceeds_max_size;
        if (refused)
            return (void)result(refused, 0);
        // Sent whether or not a local slot takes it: the domain's other hosts may have one.
        if (broadcasting)
            broadcaster_->send(h->domain, from->name, h->key, bytes);
        else if (h->targets.empty()) // a publish nobody listens to
            return (void)(++totals_.unrouted, result({}, 0));
        // A small record is copied into each queue it goes to; a larger one
        // is stored once (or stays in its lane) and shared by them.
        const record_ptr shared = share();
        std::uint32_t delivered = 0;
        for (slot* t : h->targets) {
            if (to_itself && t == direct)
                continue;
            const bool room =
                fits(t, size) &&
                (t->admit_stamp == admit_stamp_ || t->has_room_for(4 + size) ||
                 (t->config().overflow == overflow_policy::drop_oldest && t->make_room(4 + size)));
            if (!room) {
                t->drop_newest(); // counted; its reader is told before the next record
                continue;
            }
            t->enqueue(bytes, shared.get(), from, push);
            ++delivered;
        }
        result({}, delivered);
    });
    if (end < count) {
        s.frame_sent = end;
        if (!prompt) // counted when it is fed again
            s.held_posts -= body.size();
        return feed_result::blocked;
    }
    return feed_result::next;
}

// ---- lanes (docs/lanes.md) ------------------------------------------------------------------

feed_result core::on_lane_request(session& s, byte_span body)
{
    lane_request_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed lane_request");
    // A refusal is no error: the handle keeps the socket path.
    auto refuse = [&](error why) {
        send(s, lane_open_frame{0, m.handle, static_cast<std::uint32_t>(lane_role::writer),
                                static_cast<std::uint64_t>(why)});
        return feed_result::next;
    };
    if (!s.lanes)
        return refuse(error::not_supported);
    handle_entry* h = find_handle(s, m.handle);
    if (!h || h->rd || h->revoked)
        return refuse(error::invalid_handle);
    route(*h);
    // Not for another host's names, broadcasts, nor names whose records the
    // host must read to check their type: it never parses lane bytes.
    if (h->remote || h->broadcast || !h->domain.empty() || !h->declared.empty())
        return refuse(error::not_supported);
    if (m.record_size > limits_.max_lane_record)
        return refuse(error::message_exceeds_max_size);
    // A power of two that holds two of its records at least, so one may be
    // read while the next is written.
    const auto size = std::min(std::bit_ceil(std::max<std::uint64_t>(
                                   limits_.lane_bytes, 2 * std::uint64_t{m.record_size})),
                               limits_.max_lane_bytes);
    if (size < m.record_size)
        return refuse(error::message_exceeds_max_size);
    if (h->lane && h->lane->size() >= size)
        return refuse(error::already_exists);
    if (s.writer_lanes >= limits_.max_connection_lanes ||
        s.writer_lane_bytes + size > limits_.max_connection_lane_bytes ||
        total_lane_bytes_ + size > limits_.max_total_lane_bytes)
        return refuse(error::not_enough_quota);
    std::error_code ec;
    auto memory = make_lane_(size, ec);
    unique_fd fd = memory ? memory->writer_fd(ec) : unique_fd();
    if (!fd)
        return refuse(error::not_enough_quota);
    auto* made = new lane(next_lane_++, s.id, m.handle, std::move(memory), this);
    lanes_.emplace(made->id(), made);
    total_lane_bytes_ += size;
    ++s.writer_lanes;
    s.writer_lane_bytes += size;
    if (h->lane) { // a larger one replaces it: taken until the writer says it is done with it
        h->lane->retired = true;
        h->retiring = std::move(h->lane);
    }
    h->lane = lane_ptr(made);
    s.out_fds.push_back({s.out.size(), std::move(fd)});
    send(s, lane_open_frame{made->id(), m.handle, static_cast<std::uint32_t>(lane_role::writer),
                            size});
    return feed_result::next;
}

feed_result core::on_lane_mapped(session& s, byte_span body)
{
    lane_mapped_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed lane_mapped");
    auto it = lanes_.find(m.lane);
    if (it == lanes_.end() || it->second->writer() != s.id || it->second->sealed)
        return fatal(s, error::invalid_data, "lane_mapped for no new lane of this connection");
    lane& l = *it->second;
    if (l.retired)
        return feed_result::next;
    // From here no one can map it writable again: not the writer, not a
    // reader reopening its fd read-write through /proc.
    std::error_code ec;
    l.memory().seal(ec);
    if (ec)
        retire(l, true); // the writer kept it from being sealed: no lane
    else
        l.sealed = true;
    return feed_result::next;
}

feed_result core::on_lane_closed(session& s, byte_span body)
{
    lane_closed_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed lane_closed");
    auto it = lanes_.find(m.lane);
    if (it == lanes_.end() || it->second->writer() != s.id)
        return feed_result::next; // gone already
    lane_ptr keep(it->second);
    if (handle_entry* h = find_handle(s, keep->handle())) {
        keep->retired = true;
        if (h->retiring == keep)
            h->retiring.reset();
        if (h->lane == keep)
            h->lane.reset();
    }
    return feed_result::next;
}

void core::retire(lane& l, bool tell_writer)
{
    if (l.retired)
        return;
    l.retired = true;
    auto writer = sessions_.find(l.writer());
    if (writer == sessions_.end())
        return;
    session& s = *writer->second;
    if (handle_entry* h = find_handle(s, l.handle()); h && h->lane.get() == &l) {
        h->retiring = std::move(h->lane); // the writer may have described records already
        if (tell_writer) {
            send(s, lane_close_frame{l.id()});
            touch(s);
        } else {
            h->retiring.reset();
        }
    }
}

void core::retire_lanes_held_by(session& s)
{
    for (auto id : s.reader_lanes)
        if (auto it = lanes_.find(id); it != lanes_.end())
            retire(*it->second, true);
}

bool core::open_lane_for(session& s, lane& l)
{
    if (std::find(s.reader_lanes.begin(), s.reader_lanes.end(), l.id()) != s.reader_lanes.end())
        return true;
    if (!s.lanes || !l.sealed)
        return false;
    std::error_code ec;
    unique_fd fd = l.memory().reader_fd(ec);
    if (!fd)
        return false; // the record is copied out instead
    s.out_fds.push_back({s.out.size(), std::move(fd)});
    encode(s.out,
           lane_open_frame{l.id(), 0, static_cast<std::uint32_t>(lane_role::reader), l.size()});
    l.holders.push_back(s.id);
    s.reader_lanes.push_back(l.id());
    return true;
}

void core::lane_released(lane& l)
{
    auto it = sessions_.find(l.writer());
    if (it == sessions_.end())
        return;
    session& s = *it->second;
    if (std::find(s.owed_releases.begin(), s.owed_releases.end(), l.id()) == s.owed_releases.end())
        s.owed_releases.push_back(l.id());
    touch(s);
}

void core::lane_gone(lane& l)
{
    lanes_.erase(l.id());
    total_lane_bytes_ -= l.size();
    if (auto it = sessions_.find(l.writer()); it != sessions_.end()) {
        --it->second->writer_lanes;
        it->second->writer_lane_bytes -= l.size();
        std::erase(it->second->owed_releases, l.id());
    }
    for (auto holder : l.holders)
        if (auto it = sessions_.find(holder); it != sessions_.end()) {
            std::erase(it->second->reader_lanes, l.id());
            send(*it->second, lane_close_frame{l.id()});
            touch(*it->second);
        }
}

slot* core::subscription_target(session& s, std::uint32_t handle, std::string_view text,
                                topic_pattern& pattern, std::error_code& ec)
{
    pattern = topic_pattern::parse(text, ec);
    handle_entry* h = find_handle(s, handle);
    if (!h || !h->rd) // only a reader subscribes
        ec = not_a_reader(h);
    return ec ? nullptr : h->rd->target;
}

feed_result core::on_subscribe(session& s, byte_span body)
{
    subscribe_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed subscribe");
    std::error_code ec;
    topic_pattern pattern;
    if (slot* target = subscription_target(s, m.handle, m.pattern, pattern, ec)) {
        const auto key = pattern.key();
        if (!allowed(s, right::read, pattern))
            ec = error::access_denied;
        else if (std::any_of(target->subscriptions.begin(), target->subscriptions.end(),
                             [&](const topic_pattern& p) { return p.key() == key; }))
            ec = error::already_exists;
        else if (target->subscriptions.size() >= limits_.max_subscriptions ||
                 s.subscriptions >= limits_.max_connection_subscriptions ||
                 total_subscriptions_ >= limits_.max_total_subscriptions)
            ec = error::too_many_open_files;
        else {
            subscriptions_.add(pattern, target);
            target->subscriptions.push_back(std::move(pattern));
            if (!s.shared_who) // once greeted, `who` no longer changes
                s.shared_who = std::make_shared<const identity>(s.who);
            target->subscribers.push_back({s.id, m.handle, s.shared_who});
            ++s.subscriptions;
            ++total_subscriptions_;
            ++subscription_epoch_;
        }
    }
    reply(s, m.request_id, ec);
    return feed_result::next;
}

feed_result core::on_unsubscribe(session& s, byte_span body)
{
    unsubscribe_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed unsubscribe");
    std::error_code ec;
    topic_pattern pattern;
    if (slot* target = subscription_target(s, m.handle, m.pattern, pattern, ec)) {
        auto& list = target->subscriptions;
        const auto key = pattern.key();
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const topic_pattern& p) { return p.key() == key; });
        if (it == list.end()) {
            ec = error::file_not_found;
        } else {
            const auto at = it - list.begin();
            subscriptions_.remove(*it, target);
            list.erase(it);
            for (reader* r : target->readers()) // the lanes its readers hold come anew
                retire_lanes_held_by(session_of(*r));
            uncharge_subscription(target->subscribers[static_cast<std::size_t>(at)].session);
            target->subscribers.erase(target->subscribers.begin() + at);
            ++subscription_epoch_;
        }
    }
    reply(s, m.request_id, ec);
    return feed_result::next;
}

feed_result core::write_remote(session& s, handle_entry& h, byte_span body, const write_frame& m,
                               bool prompt)
{
    const auto list = check_record_list(m.records.bytes);
    if (!list.valid)
        return fatal(s, error::invalid_data, "malformed write");
    // Its results, and every result after them, wait for the remote host's
    // (some may come at once, inside write(): a record too large, a link down).
    const write_ticket ticket{s.id, s.deferred_first + s.deferred.size()};
    s.deferred.push_back({std::vector<ack_run>(list.count), list.count});
    if (!remote_->write(h.remote, m.records.bytes, list.count, ticket)) {
        s.deferred.pop_back(); // blocked: no result was given
        if (!prompt)           // counted when it is fed again
            s.held_posts -= body.size();
        return feed_result::blocked;
    }
    totals_.writes += list.count;
    return feed_result::next;
}

feed_result core::on_lost(session& s, byte_span body)
{
    lost_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed lost");
    handle_entry* h = find_handle(s, m.handle);
    if (!h || h->revoked) // closed or revoked meanwhile: there is no one to tell
        return feed_result::next;
    if (h->rd)
        return fatal(s, error::invalid_data, "lost for a handle that is not a writer");
    // This host's slots of the name hear of it; a link or a broadcast does not carry it.
    route(*h);
    for (slot* t : h->targets)
        t->lose(m.count);
    return feed_result::next;
}

feed_result core::on_info(session& s, byte_span body)
{
    info_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed info");
    info_result_frame r;
    r.request_id = m.request_id;
    handle_entry* h = find_handle(s, m.handle);
    slot* target = h ? target_of(*h) : nullptr;
    if (!h || !target) {
        r.error = static_cast<std::uint32_t>(!h           ? error::invalid_handle
                                             : h->revoked ? error::access_denied
                                                          : error::file_not_found);
    } else {
        const auto counts = target->counts();
        r.max_message_size = target->config().max_message_size;
        r.read_timeout = target->config().read_timeout;
        r.next_size = counts.next_size;
        r.message_count = counts.messages;
        r.queued_bytes = counts.bytes;
        r.dropped = counts.dropped;
    }
    send(s, r);
    return feed_result::next;
}

feed_result core::on_set_timeout(session& s, byte_span body)
{
    set_timeout_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed set_timeout");
    handle_entry* h = find_handle(s, m.handle);
    if (!h || !h->rd) {
        reply(s, m.request_id, h ? error::access_denied : error::invalid_handle);
        return feed_result::next;
    }
    // One timeout per slot, shared by every duplicate: tell them all, once
    // each however often it changes before they hear (a peer that never
    // reads cannot make this grow).
    slot& target = *h->rd->target;
    target.config().read_timeout = m.read_timeout;
    for (reader* r : target.readers())
        if (!std::exchange(r->timeout_owed, true)) {
            session& owner = *sessions_.at(r->owner);
            owner.owed_timeouts.push_back(r->handle);
            touch(owner);
        }
    reply(s, m.request_id, {});
    return feed_result::next;
}

feed_result core::on_read_report(session& s, byte_span body)
{
    read_report_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed read_report");
    handle_entry* h = find_handle(s, m.handle);
    if (h && h->revoked)
        return feed_result::next; // sent before the client heard it was revoked
    if (!h || !h->rd)
        return fatal(s, error::invalid_data, "read_report for a handle that is not a reader");
    slot& target = *h->rd->target;
    if (!target.consume(*h->rd, m.consumed))
        return fatal(s, error::invalid_data, "read_report claims more records than were pushed");
    if (m.consumed)
        target.last_read = now_();
    if (target.slow && target.caught_up()) {
        target.slow = false;
        slot_events_.push_back({slot_event::caught_up, target.name().str()});
    }
    h->rd->window = std::min(m.window, limits_.max_window);
    pump(target);
    if (m.consumed)
        wake_writers(target);
    return feed_result::next;
}

feed_result core::on_poll(session& s, byte_span body)
{
    poll_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed poll");
    handle_entry* h = find_handle(s, m.handle);
    if (!h || !h->rd) {
        reply(s, m.request_id, not_a_reader(h));
        return feed_result::next;
    }
    pump(*h->rd->target);
    reply(s, m.request_id, {}, m.handle, h->rd->target->counts().messages);
    return feed_result::next;
}

feed_result core::on_duplicate(session& s, byte_span body)
{
    duplicate_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed duplicate");
    handle_entry* h = find_handle(s, m.handle);
    if (!h || !h->rd) {
        reply(s, m.request_id, not_a_reader(h));
        return feed_result::next;
    }
    const auto now = now_();
    if (s.tokens.size() >= limits_.max_tokens) { // make room: its own expired ones go
        auto mine = s.tokens;
        for (const auto& t : mine)
            if (auto it = tokens_.find(t); it->second.expires <= now)
                erase_token(it);
    }
    // Tokens outlive their issuer's connection (a parent may hand a slot to
    // a child and exit): a cap on all of them bounds what that can pile up.
    if (tokens_.size() >= max_tokens_in_all)
        for (auto it = tokens_.begin(); it != tokens_.end();)
            it = it->second.expires <= now ? erase_token(it) : std::next(it);
    if (s.tokens.size() >= limits_.max_tokens || tokens_.size() >= max_tokens_in_all) {
        reply(s, m.request_id, error::too_many_open_files);
        return feed_result::next;
    }
    auto token = random_token();
    tokens_.emplace(token, duplicate_token{h->rd->target, s.id, now + limits_.token_lifetime});
    s.tokens.push_back(token);
    reply(s, m.request_id, {}, m.handle, 0, 0, token);
    return feed_result::next;
}

core::token_map::iterator core::erase_token(token_map::iterator it)
{
    if (auto issuer = sessions_.find(it->second.issuer); issuer != sessions_.end())
        std::erase(issuer->second->tokens, it->first);
    return tokens_.erase(it);
}

feed_result core::on_attach(session& s, byte_span body)
{
    attach_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed attach");
    auto it = tokens_.find(std::string(m.token));
    if (it != tokens_.end() && it->second.expires <= now_())
        it = (erase_token(it), tokens_.end());
    if (it == tokens_.end()) {
        reply(s, m.request_id, error::invalid_handle);
        return feed_result::next;
    }
    std::error_code ec = handle_check(s, m.handle);
    // A token hands over a slot, not a right: the one attaching must be allowed to read it.
    if (!ec && !allowed(s, right::read, literal_pattern(it->second.target->name().key())))
        ec = error::access_denied;
    if (ec) {
        reply(s, m.request_id, ec);
        return feed_result::next;
    }
    slot& target = *it->second.target;
    erase_token(it);
    add_reader(s, target, m.handle);
    reply(s, m.request_id, {}, m.handle, target.config().read_timeout,
          target.config().max_message_size);
    return feed_result::next;
}

feed_result core::on_admin(session& s, byte_span body)
{
    admin_frame m;
    if (!decode(body, m))
        return fatal(s, error::invalid_data, "malformed admin");
    const std::string_view argument(reinterpret_cast<const char*>(m.argument.bytes.data()),
                                    m.argument.bytes.size());
    std::error_code ec;
    std::string json;
    // Questions need `list`; anything else (stop, and commands to come) `admin`.
    const bool question = m.command == "slots" || m.command == "stats" || m.command == "plugins" ||
                          m.command == "explain" || m.command == "hosts" ||
                          m.command == "connections" || m.command == "logs";
    if (!allowed(s, question ? right::list : right::admin, {}))
        ec = error::access_denied;
    else if (!admin_handler_)
        ec = error::invalid_function;
    else
        json = admin_handler_(s.id, m.command, argument, ec);
    if (!ec && json.size() + 16 > limits_.max_frame_size()) {
        json = R"({"error":"the answer is larger than a frame; ask about a narrower path"})";
        ec = error::message_exceeds_max_size;
    } else if (ec) {
        json = R"({"error":")" + ec.message() + R"("})";
    }
    send(s,
         admin_result_frame{m.request_id,
                            static_cast<std::uint32_t>(ec.value()),
                            {{reinterpret_cast<const std::uint8_t*>(json.data()), json.size()}}});
    return feed_result::next;
}

void core::add_plugin_token(std::string token, std::string plugin,
                            std::shared_ptr<const grant_list> permissions)
{
    plugin_tokens_[std::move(token)] = {std::move(plugin), std::move(permissions), 0};
}

void core::bind_plugin_token(const std::string& token, std::uint32_t pid)
{
    if (auto it = plugin_tokens_.find(token); it != plugin_tokens_.end())
        it->second.pid = pid;
}

bool core::allowed(session& s, right r, const topic_pattern& name)
{
    if (policy_->decide(s.who, r, name).allowed)
        return true;
    auto key = s.who.str();
    if (!denials_.count(key) && denials_.size() >= max_denial_identities)
        key = "others";
    ++denials_[key][r];
    return false;
}

std::size_t core::set_policy(std::shared_ptr<const policy> rules)
{
    policy_ = std::move(rules);
    std::size_t revoked = 0;
    for (auto& [id, owner] : sessions_) {
        session& s = *owner;
        std::vector<std::uint32_t> denied;
        for (auto& [handle, h] : s.handles) {
            if (h.revoked)
                continue;
            const auto need = h.rd ? (h.created ? right::create : right::read) : right::write;
            const auto name = literal_pattern(h.rd ? h.rd->target->name().key() : h.key);
            if (!policy_->decide(s.who, need, name).allowed)
                denied.push_back(handle);
        }
        for (auto handle : denied)
            revoke(s, handle);
        revoked += denied.size();
    }
    // Subscriptions: each decided for whoever made it, connected or not.
    std::vector<std::pair<slot*, std::size_t>> gone;
    names_.for_each([&](slot& target) {
        for (std::size_t i = target.subscriptions.size(); i-- > 0;)
            if (!policy_->decide(*target.subscribers[i].as, right::read, target.subscriptions[i])
                     .allowed)
                gone.emplace_back(&target, i);
    });
    for (auto [target, i] : gone) { // highest index of each slot first
        const auto& by = target->subscribers[i];
        if (auto owner = sessions_.find(by.session); owner != sessions_.end())
            send(*owner->second,
                 revoked_frame{by.handle, static_cast<std::uint32_t>(error::access_denied),
                               target->subscriptions[i].str()});
        subscriptions_.remove(target->subscriptions[i], target);
        target->subscriptions.erase(target->subscriptions.begin() + static_cast<std::ptrdiff_t>(i));
        for (reader* r : target->readers())
            retire_lanes_held_by(session_of(*r));
        uncharge_subscription(by.session);
        target->subscribers.erase(target->subscribers.begin() + static_cast<std::ptrdiff_t>(i));
        ++subscription_epoch_;
    }
    return revoked + gone.size();
}

void core::revoke(session& s, std::uint32_t handle)
{
    auto& h = s.handles.at(handle);
    if (h.rd) {
        drop_reader(*h.rd);
        h.rd.reset();
        retire_lanes_held_by(s);
    }
    if (h.lane)
        retire(*h.lane, true);
    h.revoked = true;
    h.targets.clear();
    h.direct = nullptr;
    if (s.last_write_handle == handle) {
        s.last_write_handle = 0;
        s.last_write_entry = nullptr;
    }
    send(s, revoked_frame{handle, static_cast<std::uint32_t>(error::access_denied), {}});
}

void core::revoke_plugin_token(const std::string& token)
{
    plugin_tokens_.erase(token);
}

error core::not_a_reader(const handle_entry* h) noexcept
{
    return !h           ? error::invalid_handle
           : h->revoked ? error::access_denied
                        : error::invalid_parameter;
}

core::handle_entry* core::find_handle(session& s, std::uint32_t handle)
{
    auto it = s.handles.find(handle);
    return it == s.handles.end() ? nullptr : &it->second;
}

std::error_code core::handle_check(const session& s, std::uint32_t handle) const
{
    if (handle == 0 || s.handles.count(handle))
        return error::invalid_parameter; // clients number their handles; each once
    if (s.handles.size() >= limits_.max_handles)
        return error::too_many_open_files;
    return {};
}

void core::add_reader(session& s, slot& target, std::uint32_t handle)
{
    auto& entry = s.handles[handle];
    entry.rd = std::make_unique<reader>();
    entry.rd->target = &target;
    entry.rd->owner = s.id;
    entry.rd->handle = handle;
    entry.rd->paused = &s.output_paused;
    target.add_reader(entry.rd.get());
}

void core::close_handle(session& s, std::uint32_t handle)
{
    auto it = s.handles.find(handle);
    if (it == s.handles.end())
        return;
    if (reader* r = it->second.rd.get()) {
        drop_reader(*r);
        retire_lanes_held_by(s); // it may have read them for this handle only
    }
    if (it->second.lane)
        it->second.lane->retired = true; // it goes once its records have
    if (it->second.remote && remote_)
        remote_->release(it->second.remote);
    if (s.last_write_handle == handle) {
        s.last_write_handle = 0;
        s.last_write_entry = nullptr;
    }
    s.handles.erase(it);
}

void core::drop_reader(reader& r)
{
    slot& target = *r.target;
    target.remove_reader(&r);
    if (target.readers().empty())
        destroy(target); // the last reader handle is gone: so is the slot
    else
        pump(target);
}

slot* core::target_of(handle_entry& h)
{
    if (h.revoked)
        return nullptr;
    if (h.rd)
        return h.rd->target;
    route(h);
    return h.direct;
}

void core::route(handle_entry& h)
{
    const auto epoch = names_.epoch() + subscription_epoch_;
    if (h.routed_epoch == epoch)
        return;
    h.routed_epoch = epoch;
    h.targets.clear();
    ++route_stamp_;
    auto add = [&](slot* t) {
        if (t->route_stamp != route_stamp_) {
            t->route_stamp = route_stamp_;
            h.targets.push_back(t);
        }
    };
    h.declared.clear();
    for (const auto& rule : limits_.declared_types)
        if (rule.pattern.matches(h.key))
            h.declared.push_back(&rule);
    // Another host's slot, or another domain's: nothing here takes its records.
    if (h.foreign || h.remote) {
        h.direct = nullptr;
        return;
    }
    h.direct = names_.find(h.key);
    if (h.direct)
        add(h.direct);
    subscriptions_.match(h.key, add);
}

bool core::accepted(const std::vector<const topic_types*>& rules, byte_span record)
{
    boost::system::error_code ec;
    const auto json = boost::json::parse(
        std::string_view(reinterpret_cast<const char*>(record.data()), record.size()), ec);
    const auto* object = ec ? nullptr : json.if_object();
    const auto* type = object ? object->if_contains("type") : nullptr;
    if (!type || !type->is_string())
        return false;
    const std::string_view name = type->get_string();
    return std::all_of(rules.begin(), rules.end(), [&](const topic_types* rule) {
        return std::find(rule->accepted.begin(), rule->accepted.end(), name) !=
               rule->accepted.end();
    });
}

bool core::reads(const session& s, const slot& target) const
{
    return std::any_of(target.readers().begin(), target.readers().end(),
                       [&](const reader* r) { return r->owner == s.id; });
}

void core::pump(slot& target)
{
    target.pump([this](reader& r, const auto&... records) { emit(r, records...); });
}

void core::emit(reader& r, const queued_record& q)
{
    session& owner = session_of(r);
    if (q.missed_before)
        encode(owner.out, gap_frame{r.handle, q.missed_before});
    const auto id = origin_id(owner, q.from);
    // A record in a lane goes as its descriptor to a reader that takes lanes.
    if (record* in_lane = q.shared();
        in_lane && in_lane->in() && open_lane_for(owner, *in_lane->in()))
        owner.pushed_lane.append_descriptor(
            owner.out, r.handle, {in_lane->position(), in_lane->size()}, id, in_lane->in()->id());
    else
        owner.pushed.append(owner.out, r.handle, q.bytes(), id);
    touch(owner);
    owner.output_paused = owner.out.size() >= limits_.max_outbox;
}

void core::emit(reader& r, byte_span records, origin* from)
{
    session& owner = session_of(r);
    const auto id = origin_id(owner, from);
    owner.pushed.append_list(owner.out, r.handle, records, id);
    touch(owner);
    owner.output_paused = owner.out.size() >= limits_.max_outbox;
}

std::uint32_t core::origin_id(session& s, origin* from)
{
    if (from == s.last_origin || !from) // a writer mostly writes through one handle
        return from ? s.last_origin_id : 0;
    auto it = s.origins.find(from);
    if (it == s.origins.end()) {
        if (s.origins.size() >= max_origins) {
            encode(s.out, origins_forgotten_frame{s.next_origin});
            s.origins.clear();
        }
        const auto id = s.next_origin++;
        it = s.origins.emplace(from, std::pair(id, origin_ptr(from))).first;
        encode(s.out, origin_frame{id, from->uid, from->pid, from->plugin, from->name, from->host,
                                   from->client, from->domain});
    }
    s.last_origin = from;
    s.last_origin_id = it->second.first;
    return s.last_origin_id;
}

core::session& core::session_of(const reader& r)
{
    // A slot's records mostly go to one reader: its session is looked up once.
    if (!emitted_ || emitted_->id != r.owner)
        emitted_ = sessions_.at(r.owner).get();
    return *emitted_;
}

void core::wake_writers(slot& target)
{
    // Only a writer whose frame fits now goes on: waking one that would be
    // held back again at once costs a retry of its frame per read report.
    std::erase_if(target.blocked_writers, [&](const blocked_writer& b) {
        if (!target.has_room_for(b.need))
            return false;
        if (auto it = sessions_.find(b.session); it != sessions_.end()) {
            it->second->resume = true;
            touch(*it->second);
        }
        return true;
    });
}

void core::uncharge_subscription(session_id by)
{
    --total_subscriptions_;
    if (auto it = sessions_.find(by); it != sessions_.end())
        --it->second->subscriptions;
}

void core::tick()
{
    const auto now = now_();
    auto held_for = [&](const slot& t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(now - t.holding_since);
    };
    std::erase_if(holding_, [&](slot* t) {
        if (t->blocked_writers.empty()) { // they went on: its reader reads
            if (t->holding_told)
                slot_events_.push_back({slot_event::released, t->name().str(), 0, held_for(*t)});
            t->holding = t->holding_told = false;
            return true;
        }
        if (now - std::max(t->holding_since, t->last_read) < limits_.slow_after) {
            // A reader that reads, however slowly, paces its writers; the log
            // hears of it once a hold has lasted a while (and when it ends).
            if (!t->holding_told && now - t->holding_since >= held_notice_after) {
                t->holding_told = true;
                slot_events_.push_back({slot_event::holding, t->name().str(),
                                        t->blocked_writers.size(), held_for(*t)});
            }
            return false;
        }
        // Its reader has held writers back too long: they go on, and it
        // drops what does not fit until it has caught up.
        t->slow = true;
        t->holding = t->holding_told = false;
        ++t->slow_marks;
        slot_events_.push_back({slot_event::slow, t->name().str()});
        release_writers(*t);
        return true;
    });
}

std::vector<core::slot_event> core::take_slot_events()
{
    return std::exchange(slot_events_, {});
}

void core::release_writers(slot& target)
{
    for (const auto& b : target.blocked_writers)
        if (auto it = sessions_.find(b.session); it != sessions_.end()) {
            it->second->resume = true;
            touch(*it->second);
        }
    target.blocked_writers.clear();
}

void core::destroy(slot& target)
{
    std::erase(holding_, &target);
    for (const auto& pattern : target.subscriptions)
        subscriptions_.remove(pattern, &target);
    for (const auto& by : target.subscribers)
        uncharge_subscription(by.session);
    total_budget_ -= target.config().byte_budget;
    if (auto creator = sessions_.find(target.owner.session); creator != sessions_.end())
        creator->second->budget -= target.config().byte_budget;
    subscription_epoch_ += !target.subscriptions.empty();
    for (auto it = tokens_.begin(); it != tokens_.end();)
        it = it->second.target == &target ? erase_token(it) : std::next(it);
    // Held-back writers go on; their writes now find no receiver.
    release_writers(target);
    const auto& t = target.traffic();
    gone_.records_in += t.records_in;
    gone_.bytes_in += t.bytes_in;
    gone_.records_out += t.records_out;
    gone_.bytes_out += t.bytes_out;
    gone_dropped_ += target.counts().dropped;
    names_.erase(target.name().key());
}

// ---- the "connections" answer (core_admin.cpp has the others; it needs the session) ----

namespace json = boost::json;

namespace {

std::int64_t ms_between(core::clock::time_point from, core::clock::time_point to)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

/// Who a connection is, and what it moved: what open and closed ones share.
json::object connection_of(const auto& s, core::clock::time_point now)
{
    json::object o{{"id", s.id},
                   {"identity", s.who.str()},
                   {"client", s.client_name},
                   {"plugin", s.who.plugin},
                   {"pid", s.who.pid},
                   {"uid", s.who.uid},
                   {"claimed_pid", s.claimed_pid},
                   {"uptime_ms", ms_between(s.connected_at, now)},
                   {"handles", s.handles.size()},
                   {"subscriptions", s.subscriptions},
                   {"budget", s.budget},
                   {"writes", s.records_in},
                   {"bytes_in", s.bytes_in},
                   {"bytes_out", s.bytes_out},
                   {"outbox_bytes", s.out.size()}};
    if (!s.who.host.empty())
        o["host"] = s.who.host;
    if (!s.who.domain.empty())
        o["domain"] = s.who.domain;
    return o;
}

} // namespace

void core::remember_closed(const session& s, std::string_view reason)
{
    auto o = connection_of(s, now_());
    o.erase("outbox_bytes");
    o["closed_at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    o["reason"] = reason;
    closed_.push_back(std::move(o));
    if (closed_.size() > closed_kept)
        closed_.pop_front();
}

json::object core::connections(std::size_t limit) const
{
    // Open ones by id (sessions_ is unordered), as many as fit half a frame.
    std::vector<const session*> open;
    open.reserve(sessions_.size());
    for (const auto& [id, s] : sessions_)
        open.push_back(s.get());
    std::sort(open.begin(), open.end(), [](auto* a, auto* b) { return a->id < b->id; });
    const std::size_t page_bytes = limits_.max_frame_size() / 2;
    std::size_t bytes = 0;
    json::array shown;
    const auto now = now_();
    for (const session* s : open) {
        if (shown.size() == limit || bytes > page_bytes)
            break;
        auto o = connection_of(*s, now);
        bytes += json::serialize(o).size();
        shown.push_back(std::move(o));
    }
    json::array closed(closed_.begin(), closed_.end());
    const auto cut = open.size() - shown.size();
    return {{"open", open.size()},
            {"connections", std::move(shown)},
            {"cut", cut},
            {"closed", std::move(closed)}};
}

} // namespace slotbus::bus
