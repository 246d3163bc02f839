#include "link.hpp"

#include <boost/endian/conversion.hpp>

#include <algorithm>

#include "core/random_token.hpp"

namespace slotbus::bus {

namespace {

std::uint64_t new_session()
{
    return std::stoull(random_token().substr(0, 16), nullptr, 16) | 1; // never 0
}

constexpr std::uint32_t flow_handle = 1; // a flow session's one writer handle

std::uint32_t err(error e)
{
    return static_cast<std::uint32_t>(e);
}

} // namespace

host_link::host_link(core& routing, settings options)
    : core_(routing), options_(std::move(options)), session_(new_session())
{
}

host_link::~host_link()
{
    drop_peer_flows();
}

bool host_link::may_take(std::uint64_t consumed, std::uint64_t granted, std::uint64_t initial,
                         std::uint64_t cost)
{
    // An empty flow takes any one frame, however large its records: else a
    // record larger than the credit would never go.
    return consumed + initial == granted || consumed + cost <= granted;
}

bool host_link::fail(std::string why)
{
    why_ = std::move(why);
    encode(out_, fatal_frame{err(error::invalid_data), why_});
    return false;
}

void host_link::take_output(byte_buffer& into)
{
    flush_results();
    into.clear();
    into.swap(out_);
}

// ---- the stream -------------------------------------------------------------------------

void host_link::connected(clock::time_point now)
{
    out_.clear();
    why_.clear();
    state_ = state::hello_sent;
    last_heard_ = now;
    ++counters_.streams;
    encode(out_, link_hello_frame{.magic = link_magic,
                                  .version = link_version,
                                  .host = options_.self,
                                  .session = session_,
                                  .resume_session = peer_session_,
                                  .received_through = received_through_,
                                  .results_through = results_received_,
                                  .max_record_size = core_.limits().max_record_size,
                                  .flow_credit = options_.flow_credit,
                                  .window = options_.window});
}

void host_link::disconnected(clock::time_point now)
{
    if (state_ == state::down)
        return;
    // The resume window runs from when writes stopped flowing: streams that
    // break before their hello do not start it again.
    if (state_ == state::up)
        down_since_ = now;
    state_ = state::down;
    out_.clear();
    results_out_.clear(); // kept in results_log_ for the next stream
    // Writers waiting for credit would wait for nothing: they go on (and
    // their writes fail with bad_netpath while the link is down).
    wake(window_blocked_);
    for (auto& [id, f] : out_flows_)
        wake(f.blocked);
}

void host_link::tick(clock::time_point now)
{
    if (state_ != state::down || given_up_ || now - down_since_ < options_.resume_window)
        return;
    // Given up here: the peer must not resume what this host no longer has.
    given_up_ = true;
    give_up_writes(error::netname_deleted);
    session_ = new_session();
    drop_peer_flows();
}

void host_link::heartbeat(clock::time_point now)
{
    if (state_ != state::up)
        return;
    ping_sent_ = now;
    encode(out_, ping_frame{++ping_nonce_});
    acknowledge(true);
}

void host_link::acknowledge(bool always)
{
    if (results_received_ == results_acked_ ||
        (!always && results_received_ - results_acked_ < ack_every))
        return;
    results_acked_ = results_received_;
    encode(out_, link_ack_frame{results_received_});
}

bool host_link::feed(const frame_view& frame, clock::time_point now)
{
    last_heard_ = now;
    if (results_log_.size() > max_results_logged &&
        frame.type != frame_type::link_hello) // its results, never acknowledged
        return fail("the peer acknowledges no results (" + std::to_string(results_log_.size()) +
                    " kept for it)");
    if (state_ == state::hello_sent && frame.type != frame_type::link_hello)
        return fail("the first frame of a link must be link_hello");
    if (reopening_ && frame.type != frame_type::link_open)
        end_reopening();
    switch (frame.type) {
    case frame_type::link_hello:
        return on_hello(frame.body, now);
    case frame_type::link_open:
        return on_open(frame.body);
    case frame_type::link_write:
        return on_write(frame.body);
    case frame_type::link_results:
        return on_results(frame.body);
    case frame_type::link_credit:
        return on_credit(frame.body);
    case frame_type::link_close:
        return on_close(frame.body);
    case frame_type::link_ack: {
        link_ack_frame m;
        if (!decode(frame.body, m))
            return fail("malformed link_ack");
        while (!results_log_.empty() && log_first_ <= m.results_through) {
            results_log_.pop_front();
            ++log_first_;
        }
        return true;
    }
    case frame_type::ping: {
        ping_frame m;
        if (!decode(frame.body, m))
            return fail("malformed ping");
        encode(out_, pong_frame{m.nonce});
        return true;
    }
    case frame_type::pong: {
        pong_frame m;
        if (!decode(frame.body, m))
            return fail("malformed pong");
        if (m.nonce == ping_nonce_)
            round_trip_ = std::chrono::duration_cast<std::chrono::microseconds>(now - ping_sent_);
        return true;
    }
    case frame_type::fatal: {
        fatal_frame m;
        why_ = decode(frame.body, m) ? "the peer closed the link: " + std::string(m.message)
                                     : "the peer closed the link";
        return false;
    }
    default:
        return fail("not a link frame");
    }
}

bool host_link::on_hello(byte_span body, clock::time_point now)
{
    link_hello_frame m;
    if (!decode(body, m) || m.magic != link_magic)
        return fail("malformed link_hello");
    if (state_ == state::up)
        return fail("a second link_hello");
    if (m.version != link_version)
        return fail("link version " + std::to_string(m.version) + " is not " +
                    std::to_string(link_version));
    if (m.flow_credit == 0 || m.window == 0 || m.max_record_size == 0)
        return fail("a link_hello with no credit, window or record size");
    peer_name_ = std::string(m.host);
    peer_max_record_ = m.max_record_size;
    // What the peer grants is taken up to what this host would grant: a
    // peer cannot make this host keep more of its writers' records for it.
    peer_flow_credit_ = std::min(m.flow_credit, options_.flow_credit);
    peer_window_ = std::min(m.window, options_.window);
    state_ = state::up;
    ever_up_ = true;
    given_up_ = false;
    last_heard_ = now;

    // Origin: the peer still holds this session's writes, or none of them.
    if (m.resume_session == session_) {
        ++counters_.resumed;
        // Every live flow opens again first (an open lost with the stream
        // would leave its writes nowhere; the peer takes a repeated open as
        // it is, and drops idle flows not opened again: their close was lost).
        for (auto& [id, f] : out_flows_)
            reopen(id, f);
        // What it took stays taken (its results come, or came: resent from
        // its log); the rest goes again, in sequence order.
        for (auto& [seq, p] : pending_)
            if (seq > m.received_through) {
                encode(out_, link_write_frame{p.flow, seq, {p.records}});
                counters_.resent += p.count;
            }
    } else { // the session in this hello starts afresh there
        give_up_writes(error::netname_deleted);
        for (auto& [id, f] : out_flows_)
            send_open(id, f);
    }

    // Destination: the peer's session goes on, or a new one starts.
    if (m.session != peer_session_) {
        drop_peer_flows();
        peer_session_ = m.session;
        received_through_ = 0;
    } else {
        while (!results_log_.empty() && log_first_ <= m.results_through) {
            results_log_.pop_front(); // it has them
            ++log_first_;
        }
        for (std::size_t i = 0; i < results_log_.size(); ++i)
            queue_result(log_first_ + i, results_log_[i]);
        for (auto& [id, f] : in_flows_) {
            f.announced = f.granted;
            encode(out_, link_credit_frame{id, f.granted});
        }
        reopening_ = true;
        reopened_.clear();
    }
    // Writers that waited for the link may go on.
    wake(window_blocked_);
    for (auto& [id, f] : out_flows_)
        wake(f.blocked);
    return true;
}

// ---- origin -----------------------------------------------------------------------------

std::uint32_t host_link::acquire(const slot_name& name, std::error_code& ec)
{
    if (auto it = flow_of_key_.find(name.key()); it != flow_of_key_.end()) {
        ++out_flows_.at(it->second).writers;
        return it->second;
    }
    if (out_flows_.size() >= options_.max_flows) {
        ec = error::too_many_open_files;
        return 0;
    }
    while (next_flow_ == 0 || out_flows_.contains(next_flow_)) // after 2^32 flows
        ++next_flow_;
    const auto id = next_flow_++;
    auto& f = out_flows_[id];
    f.path = name.path();
    f.key = name.key();
    f.writers = 1;
    flow_of_key_[f.key] = id;
    if (state_ == state::up)
        send_open(id, f);
    return id;
}

void host_link::send_open(std::uint32_t flow, out_flow& f)
{
    f.opened = true;
    f.consumed = 0;
    f.granted = peer_flow_credit_;
    encode(out_, link_open_frame{flow, f.path});
}

void host_link::reopen(std::uint32_t flow, out_flow& f)
{
    if (!f.opened) { // acquired while the stream was down: new there
        send_open(flow, f);
        return;
    }
    encode(out_, link_open_frame{flow, f.path}); // its credit goes on
}

void host_link::release(std::uint32_t flow)
{
    auto it = out_flows_.find(flow);
    if (it == out_flows_.end())
        return;
    if (it->second.writers > 0)
        --it->second.writers;
    retire_if_idle(flow);
}

void host_link::retire_if_idle(std::uint32_t flow)
{
    auto it = out_flows_.find(flow);
    if (it == out_flows_.end() || it->second.writers > 0 || it->second.pending > 0)
        return;
    if (state_ == state::up && it->second.opened)
        encode(out_, link_close_frame{flow});
    flow_of_key_.erase(it->second.key);
    out_flows_.erase(it);
}

bool host_link::write(std::uint32_t flow, byte_span records, std::uint32_t count,
                      write_ticket ticket)
{
    auto& f = out_flows_.at(flow);
    if (state_ != state::up) { // the link is down: nothing is kept for it
        core_.remote_results(ticket, 0, count, err(error::bad_netpath), 0);
        return true;
    }
    const auto cost = link_cost(records.size(), count);
    if (!may_take(f.consumed, f.granted, peer_flow_credit_, cost)) {
        f.blocked.insert(ticket.session);
        return false;
    }
    if (in_flight_ > 0 && in_flight_ + cost > peer_window_) {
        window_blocked_.insert(ticket.session);
        return false;
    }
    // Runs of records the peer takes go as frames; one larger than it takes
    // fails alone, in its place.
    // Frames stay within what the peer reads as one (its record maximum or
    // a 64 KiB list, whichever is larger), whatever this host's is.
    const std::size_t list_limit =
        std::max<std::size_t>(peer_max_record_, record_list_builder::batch_bytes) + 4;
    std::uint32_t index = 0, run_start = 0;
    std::size_t run_begin = 0, at = 0;
    auto send_run = [&](std::size_t end) {
        if (index > run_start)
            send_frame(flow, f, records.subspan(run_begin, end - run_begin), index - run_start,
                       ticket, run_start);
        run_start = index;
        run_begin = end;
    };
    for_each_checked_record(records, [&](byte_span record) {
        const std::size_t next = at + 4 + record.size();
        if (record.size() > peer_max_record_) {
            send_run(at);
            core_.remote_results(ticket, index, 1, err(error::message_exceeds_max_size), 0);
            run_start = index + 1;
            run_begin = next;
        } else if (next - run_begin > list_limit) {
            send_run(at);
        }
        ++index;
        at = next;
    });
    send_run(at);
    return true;
}

void host_link::send_frame(std::uint32_t flow, out_flow& f, byte_span records, std::uint32_t count,
                           write_ticket ticket, std::uint32_t index)
{
    const auto seq = next_seq_;
    next_seq_ += count;
    const auto cost = link_cost(records.size(), count);
    f.consumed += cost;
    ++f.pending;
    in_flight_ += cost;
    counters_.records_out += count;
    counters_.bytes_out += records.size() - 4ull * count;
    encode(out_, link_write_frame{flow, seq, {records}});
    pending_.emplace(seq, pending_frame{.flow = flow,
                                        .count = count,
                                        .resolved = 0,
                                        .ticket = ticket,
                                        .index = index,
                                        .cost = cost,
                                        .records = byte_buffer(records.begin(), records.end())});
}

bool host_link::on_results(byte_span body)
{
    link_results_frame m;
    if (!decode(body, m) || m.runs.bytes.size() % link_result_run_size != 0 || m.first_result == 0)
        return fail("malformed link_results");
    const auto runs = m.runs.bytes.size() / link_result_run_size;
    if (m.first_result > results_received_ + 1)
        return fail("link_results skipped some");
    results_received_ = std::max<std::uint64_t>(results_received_, m.first_result + runs - 1);
    bool freed = false;
    for (std::size_t at = 0; at < m.runs.bytes.size(); at += link_result_run_size) {
        const auto* p = m.runs.bytes.data() + at;
        link_result_run run{
            boost::endian::load_little_u32(p), boost::endian::load_little_u64(p + 4),
            boost::endian::load_little_u32(p + 12), boost::endian::load_little_u32(p + 16),
            boost::endian::load_little_u32(p + 20)};
        // The frames the run covers; parts already resolved (a resent log) are skipped.
        auto it = pending_.upper_bound(run.first_seq);
        if (it != pending_.begin())
            --it;
        const std::uint64_t end = run.first_seq + run.count;
        while (it != pending_.end() && it->first < end) {
            auto& [seq, frame] = *it;
            const std::uint64_t from = std::max(run.first_seq, seq + frame.resolved);
            const std::uint64_t to = std::min(end, seq + frame.count);
            if (frame.flow != run.flow || from >= to || from != seq + frame.resolved) {
                ++it;
                continue;
            }
            const auto n = static_cast<std::uint32_t>(to - from);
            const auto error_code = run.error == err(error::access_denied)
                                        ? err(error::network_access_denied)
                                        : run.error;
            core_.remote_results(frame.ticket, frame.index + frame.resolved, n, error_code,
                                 run.delivered);
            frame.resolved += n;
            if (frame.resolved < frame.count) {
                ++it;
                continue;
            }
            in_flight_ -= frame.cost;
            const auto flow = frame.flow;
            --out_flows_.at(flow).pending;
            it = pending_.erase(it);
            freed = true;
            retire_if_idle(flow); // released while it had writes out
        }
    }
    if (freed)
        wake(window_blocked_);
    // The peer keeps every result until told this host has it: told often
    // enough that its log stays small however fast results come.
    acknowledge(false);
    return true;
}

bool host_link::on_credit(byte_span body)
{
    link_credit_frame m;
    if (!decode(body, m))
        return fail("malformed link_credit");
    auto it = out_flows_.find(m.flow);
    if (it == out_flows_.end()) // closed since
        return true;
    if (m.granted > it->second.granted) {
        it->second.granted = m.granted;
        wake(it->second.blocked);
    }
    return true;
}

void host_link::give_up_writes(error e)
{
    for (auto& [seq, frame] : pending_) {
        const auto n = frame.count - frame.resolved;
        core_.remote_results(frame.ticket, frame.index + frame.resolved, n, err(e), 0);
        counters_.unknown_outcome += n;
    }
    pending_.clear();
    in_flight_ = 0;
    results_received_ = results_acked_ = 0; // the peer numbers a new session's from 1
    for (auto it = out_flows_.begin(); it != out_flows_.end();) {
        auto& f = it->second;
        f.pending = 0;
        f.opened = false;
        f.consumed = 0;
        f.granted = peer_flow_credit_;
        wake(f.blocked);
        if (f.writers == 0) {
            flow_of_key_.erase(f.key);
            it = out_flows_.erase(it);
        } else {
            ++it;
        }
    }
    wake(window_blocked_);
}

void host_link::wake(std::set<session_id>& sessions)
{
    for (auto id : sessions)
        core_.wake(id);
    sessions.clear();
}

// ---- destination ------------------------------------------------------------------------

bool host_link::on_open(byte_span body)
{
    link_open_frame m;
    if (!decode(body, m))
        return fail("malformed link_open");
    if (in_flows_.contains(m.flow)) {
        // Opened again after a resume: the same flow goes on.
        if (!reopening_)
            return fail("link_open of a flow in use");
        reopened_.insert(m.flow);
        return true;
    }
    if (m.flow == 0)
        return fail("link_open of flow 0");
    if (reopening_)
        reopened_.insert(m.flow);
    if (in_flows_.size() >= options_.max_flows)
        return fail("more than " + std::to_string(options_.max_flows) + " flows");
    auto& f = in_flows_[m.flow];
    f.session = core_.connect_peer(options_.peer);
    f.granted = options_.flow_credit;
    f.announced = f.granted;
    flow_of_session_[f.session] = m.flow;
    // This host's slot of that path, never a name of another host: a record
    // that came over a link goes no further.
    f.name = "\\\\.\\mailslot\\" + std::string(m.path);
    open_here(m.flow, f);
    return true;
}

void host_link::open_here(std::uint32_t flow, in_flow& f)
{
    byte_buffer frame;
    encode(frame, open_frame{1, flow_handle, open_rebind, f.name});
    f.open_error = 0;
    core_.feed(f.session, {frame_type::open, byte_span(frame).subspan(frame_header_size)});
    core_.end_batch(f.session);
    take_results(flow, f); // a refusal sets open_error
}

bool host_link::on_close(byte_span body)
{
    link_close_frame m;
    if (!decode(body, m))
        return fail("malformed link_close");
    auto it = in_flows_.find(m.flow);
    if (it == in_flows_.end())
        return true;
    if (!it->second.held.empty() || !it->second.fed.empty())
        return fail("link_close of a flow with writes in flight");
    flow_of_session_.erase(it->second.session);
    core_.disconnect(it->second.session);
    in_flows_.erase(it);
    return true;
}

bool host_link::on_write(byte_span body)
{
    link_write_frame m;
    if (!decode(body, m))
        return fail("malformed link_write");
    const auto list = check_record_list(m.records.bytes);
    if (!list.valid)
        return fail("a link_write whose record list lies");
    auto it = in_flows_.find(m.flow);
    if (it == in_flows_.end())
        return fail("link_write to a flow not opened");
    if (m.first_seq == 0 || m.first_seq + list.count < m.first_seq)
        return fail("link_write numbered past the end");
    if (m.first_seq <= received_through_) { // resent, and taken before
        ++counters_.duplicates;
        return true;
    }
    if (m.first_seq != received_through_ + 1 && received_through_ != 0)
        return fail("link_write out of sequence");
    auto& f = it->second;
    const auto cost = link_cost(m.records.bytes.size(), list.count);
    if (!may_take(f.consumed, f.granted, options_.flow_credit, cost))
        return fail("link_write past the flow's credit");
    if (in_outstanding_ > 0 && in_outstanding_ + cost > options_.window)
        return fail("link_write past the link's window");
    received_through_ = m.first_seq + list.count - 1;
    f.consumed += cost;
    in_outstanding_ += cost;
    counters_.records_in += list.count;
    counters_.bytes_in += list.bytes;
    // As a write frame's body: the flow's handle and the records (in a
    // buffer kept for it, so taking a frame allocates nothing).
    write_body_.resize(4);
    boost::endian::store_little_u32(write_body_.data(), flow_handle);
    write_body_.insert(write_body_.end(), m.records.bytes.begin(), m.records.bytes.end());
    if (f.open_error != 0)
        open_here(m.flow, f); // asks again, as feed_held does
    if (f.held.empty() && f.open_error == 0 &&
        core_.feed(f.session, {frame_type::write, write_body_}) != feed_result::blocked) {
        f.fed.push_back({m.first_seq, list.count, cost});
        core_.end_batch(f.session);
        take_results(m.flow, f);
        return true;
    }
    f.held.push_back({m.first_seq, list.count, write_body_}); // a copy only for what waits
    feed_held(m.flow, f);
    return true;
}

void host_link::feed_held(std::uint32_t flow, in_flow& f)
{
    // Refused when it opened: the policy may allow it now (a reload), so
    // each frame that comes asks again.
    if (f.open_error != 0 && !f.held.empty())
        open_here(flow, f);
    while (!f.held.empty()) {
        auto& frame = f.held.front();
        if (f.open_error != 0) { // refused at open: each record fails alone
            f.fed.push_back(
                {frame.first_seq, frame.count, link_cost(frame.body.size() - 4, frame.count)});
            f.held.pop_front();
            continue;
        }
        if (core_.feed(f.session, {frame_type::write, frame.body}) == feed_result::blocked)
            break; // the slot is full: it waits here, and the credit with it
        f.fed.push_back(
            {frame.first_seq, frame.count, link_cost(frame.body.size() - 4, frame.count)});
        f.held.pop_front();
    }
    core_.end_batch(f.session);
    take_results(flow, f);
}

void host_link::collect(session_id id)
{
    const auto flow = flow_of_session_.at(id);
    auto& f = in_flows_.at(flow);
    if (core_.take_resume(id))
        feed_held(flow, f);
    else
        take_results(flow, f);
}

void host_link::take_results(std::uint32_t flow, in_flow& f)
{
    auto& out = flow_output_; // kept: its capacity serves the next flow's output
    out.clear();
    if (core_.has_output(f.session))
        core_.take_output(f.session, out);
    // What a flow session is sent: its open's result, its writes' results.
    for (std::size_t at = 0; at < out.size();) {
        const auto found = decode_frame(byte_span(out).subspan(at), out.size());
        if (found.status != decoded_frame::ok)
            break;
        at += found.size;
        if (found.frame.type == frame_type::result) {
            result_frame r;
            if (decode(found.frame.body, r) && r.error != 0) {
                f.open_error = r.error;
                ++counters_.refused;
            }
            continue;
        }
        if (found.frame.type != frame_type::write_acks)
            continue;
        write_acks_frame acks;
        if (!decode(found.frame.body, acks))
            continue;
        for (std::size_t r = 0; r + ack_run_size <= acks.runs.bytes.size(); r += ack_run_size) {
            const auto* p = acks.runs.bytes.data() + r;
            auto count = boost::endian::load_little_u32(p);
            const auto error_code = boost::endian::load_little_u32(p + 4);
            const auto delivered = boost::endian::load_little_u32(p + 8);
            // A run covers the fed frames' records in order, across frames.
            while (count > 0 && !f.fed.empty()) {
                auto& front = f.fed.front();
                const auto n = std::min(count, front.count);
                add_result(flow, front.first_seq, n, error_code, delivered);
                front.first_seq += n;
                front.count -= n;
                count -= n;
                if (front.count == 0) {
                    f.granted += front.cost;
                    in_outstanding_ -= front.cost;
                    f.fed.pop_front();
                }
            }
        }
    }
    // A refused flow's records fail as they come, each with the refusal.
    while (f.open_error != 0 && !f.fed.empty()) {
        auto& front = f.fed.front();
        const auto e = f.open_error == err(error::access_denied) ? err(error::network_access_denied)
                                                                 : f.open_error;
        add_result(flow, front.first_seq, front.count, e, 0);
        f.granted += front.cost;
        in_outstanding_ -= front.cost;
        f.fed.pop_front();
    }
    if (f.granted != f.announced && state_ == state::up) {
        f.announced = f.granted;
        flush_results(); // results before the credit they free
        encode(out_, link_credit_frame{flow, f.granted});
    }
}

void host_link::add_result(std::uint32_t flow, std::uint64_t first_seq, std::uint32_t count,
                           std::uint32_t error_code, std::uint32_t delivered)
{
    results_log_.push_back({flow, first_seq, count, error_code, delivered});
    if (state_ == state::up)
        queue_result(log_first_ + results_log_.size() - 1, results_log_.back());
}

void host_link::queue_result(std::uint64_t number, const link_result_run& run)
{
    if (results_out_.empty())
        out_first_ = number;
    const auto [flow, first_seq, count, error_code, delivered] = run;
    std::uint8_t b[link_result_run_size];
    boost::endian::store_little_u32(b, flow);
    boost::endian::store_little_u64(b + 4, first_seq);
    boost::endian::store_little_u32(b + 12, count);
    boost::endian::store_little_u32(b + 16, error_code);
    boost::endian::store_little_u32(b + 20, delivered);
    results_out_.insert(results_out_.end(), b, b + sizeof b);
    if (results_out_.size() >= 64 * 1024)
        flush_results();
}

void host_link::flush_results()
{
    if (results_out_.empty())
        return;
    encode(out_, link_results_frame{out_first_, {results_out_}});
    results_out_.clear();
}

void host_link::end_reopening()
{
    reopening_ = false;
    // An idle flow the origin did not open again is one whose close was
    // lost with a stream: it goes now.
    for (auto it = in_flows_.begin(); it != in_flows_.end();) {
        auto& f = it->second;
        if (!reopened_.contains(it->first) && f.held.empty() && f.fed.empty()) {
            flow_of_session_.erase(f.session);
            core_.disconnect(f.session);
            it = in_flows_.erase(it);
        } else {
            ++it;
        }
    }
    reopened_.clear();
}

void host_link::drop_peer_flows()
{
    for (auto& [id, f] : in_flows_)
        core_.disconnect(f.session);
    in_flows_.clear();
    flow_of_session_.clear();
    in_outstanding_ = 0;
    results_log_.clear();
    log_first_ = 1;
    results_out_.clear();
    reopening_ = false;
    peer_session_ = 0;
    received_through_ = 0;
}

boost::json::object host_link::status() const
{
    boost::json::object o;
    o["peer"] = options_.peer;
    o["state"] = state_ == state::up ? "up" : state_ == state::hello_sent ? "connecting" : "down";
    o["round_trip_us"] = round_trip_.count();
    o["max_record_size"] = peer_max_record_;
    o["flows_out"] = out_flows_.size();
    o["flows_in"] = in_flows_.size();
    o["in_flight"] = in_flight_;
    o["window"] = peer_window_;
    o["records_out"] = counters_.records_out;
    o["bytes_out"] = counters_.bytes_out;
    o["records_in"] = counters_.records_in;
    o["bytes_in"] = counters_.bytes_in;
    o["resent"] = counters_.resent;
    o["duplicates_dropped"] = counters_.duplicates;
    o["unknown_outcome"] = counters_.unknown_outcome;
    o["refused_flows"] = counters_.refused;
    o["streams"] = counters_.streams;
    o["resumed"] = counters_.resumed;
    o["results_kept"] = results_log_.size();
    boost::json::array credits;
    for (const auto& [id, f] : out_flows_) {
        const auto outstanding = f.consumed + peer_flow_credit_ - f.granted;
        credits.push_back({{"path", f.path},
                           {"in_flight", outstanding},
                           {"credit", static_cast<std::int64_t>(f.granted - f.consumed)},
                           {"writers", f.writers},
                           {"waiting", f.blocked.size()}});
    }
    o["destinations"] = std::move(credits);
    o["last_error"] = why_;
    return o;
}

} // namespace slotbus::bus
