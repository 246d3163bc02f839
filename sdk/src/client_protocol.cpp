#include "slotbus/detail/client_protocol.hpp"

#include "slotbus/error.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/topic_pattern.hpp"

#include <algorithm>
#include <unistd.h>
#include <unordered_set>

namespace slotbus::detail {

namespace {

error_code to_error(std::uint32_t value)
{
    if (value == 0)
        return {};
    return std::error_code(static_cast<int>(value), error_category());
}

frame_action failure(error_code ec, std::string why)
{
    frame_action a;
    a.what = frame_action::kind::fail;
    a.ec = ec;
    a.why = std::move(why);
    return a;
}

frame_action about(frame_action::kind what, std::uint32_t handle)
{
    frame_action a;
    a.what = what;
    a.handle = handle;
    return a;
}

} // namespace

// ---- the session ------------------------------------------------------------------------------

void client_protocol::hello(std::uint32_t pid, std::string_view client_name, std::string_view token,
                            std::uint32_t features)
{
    awaiting_welcome_ = true;
    byte_buffer frame;
    encode(frame, hello_frame{protocol_magic, protocol_version, protocol_version, pid, features,
                              client_name, token});
    send(std::move(frame));
}

void client_protocol::take_fd(int fd)
{
    fds_.push_back(fd);
}

void client_protocol::close_fds() noexcept
{
    for (int fd : fds_)
        ::close(fd);
    fds_.clear();
}

frame_action client_protocol::on_frame(const frame_view& frame)
{
    auto malformed = [] { return failure(error::invalid_data, "malformed frame from the host"); };
    switch (frame.type) {
    case frame_type::welcome: {
        welcome_frame m;
        if (!decode(frame.body, m) || !awaiting_welcome_)
            return malformed();
        awaiting_welcome_ = false;
        max_record_size_ = m.max_record_size;
        max_frame_size_ = m.max_frame_size;
        lanes_.enable(m.lane_threshold, m.max_lane_record);
        origin_ids_.clear(); // a new connection numbers its origins afresh
        prune_senders();
        host_name_ = std::string(m.host_name);
        plugin_name_ = std::string(m.plugin);
        return about(frame_action::kind::welcomed, 0);
    }
    case frame_type::result: {
        result_frame m;
        if (!decode(frame.body, m))
            return malformed();
        if (auto poll = polls_.find(m.request_id); poll != polls_.end()) {
            // Everything the host had is here now, and so is any change of
            // the slot's timeout: a read still waiting times out now if it is
            // still 0, else waits as the slot's timeout says.
            auto a = about(frame_action::kind::poll_answered, poll->second.first);
            a.read_op = poll->second.second;
            polls_.erase(poll);
            return a;
        }
        return answer(m.request_id, m.error,
                      {m.handle, m.value_a, m.value_b, std::string(m.text), {}});
    }
    case frame_type::info_result: {
        info_result_frame m;
        if (!decode(frame.body, m))
            return malformed();
        reply r;
        r.info = {m.max_message_size, m.next_size,    m.message_count,
                  m.read_timeout,     m.queued_bytes, m.dropped};
        return answer(m.request_id, m.error, std::move(r));
    }
    case frame_type::write_acks:
        return on_write_acks(frame);
    case frame_type::records:
        return on_records(frame);
    case frame_type::records_lane:
        return on_records_lane(frame);
    case frame_type::lane_open:
        return on_lane_open(frame);
    case frame_type::lane_release: {
        lane_release_frame m;
        if (!decode(frame.body, m))
            return malformed();
        lanes_.released(m.lane, m.position);
        return about(frame_action::kind::lanes_changed, 0);
    }
    case frame_type::lane_close:
        return on_lane_close(frame);
    case frame_type::gap: {
        gap_frame m;
        if (!decode(frame.body, m))
            return malformed();
        if (auto it = readers_.find(m.handle); it != readers_.end())
            if (auto& gap = it->second.gap; gap != gap_unknown) // saturates short of it
                gap = static_cast<std::uint32_t>(
                    std::min<std::uint64_t>(std::uint64_t{gap} + m.missed, gap_unknown - 1));
        return {};
    }
    case frame_type::pong: // a heartbeat's answer: hearing anything is what counts
        return {};
    case frame_type::timeout_changed: {
        timeout_changed_frame m;
        if (!decode(frame.body, m))
            return malformed();
        // The slot's timeout, set through another handle: reads waiting now
        // wait by it too (0 ends them at once, forever waits on).
        auto it = readers_.find(m.handle);
        if (it == readers_.end())
            return {};
        it->second.read_timeout = m.read_timeout;
        return about(frame_action::kind::timeout_changed, m.handle);
    }
    case frame_type::admin_result: {
        admin_result_frame m;
        if (!decode(frame.body, m))
            return malformed();
        reply r;
        r.text.assign(m.json.bytes.begin(), m.json.bytes.end());
        return answer(m.request_id, m.error, std::move(r));
    }
    case frame_type::origin: {
        origin_frame m;
        if (!decode(frame.body, m) || m.id == 0 || origin_ids_.count(m.id))
            return malformed(); // ids are not reused within a connection
        const auto ours = next_sender_++;
        senders_[ours] = std::make_shared<const record_sender>(
            record_sender{m.uid, m.pid, std::string(m.plugin), std::string(m.name),
                          std::string(m.host), std::string(m.client), std::string(m.domain)});
        origin_ids_[m.id] = ours;
        return {};
    }
    case frame_type::origins_forgotten: {
        origins_forgotten_frame m;
        if (!decode(frame.body, m))
            return malformed();
        std::erase_if(origin_ids_, [&](const auto& entry) { return entry.first < m.below; });
        prune_senders();
        return {};
    }
    case frame_type::revoked: {
        revoked_frame m;
        if (!decode(frame.body, m))
            return malformed();
        return on_revoked(m.handle, to_error(m.error), m.pattern);
    }
    case frame_type::fatal: {
        fatal_frame m;
        if (!decode(frame.body, m))
            return malformed();
        return failure(to_error(m.error), std::string(m.message));
    }
    default:
        return malformed();
    }
}

frame_action client_protocol::on_write_acks(const frame_view& frame)
{
    write_acks_frame m;
    bool ok = decode(frame.body, m); // and false from the walk on an ack for no write
    asked_for_results_ = false;
    // A run may end part-way into a batch, or cover several batches.
    const bool listed =
        ok && for_each_ack_run(m.runs.bytes, [&](const ack_run& run) {
            for (std::uint32_t left = run.count; left > 0 && ok;) {
                if (writes_.empty()) {
                    ok = false;
                    return;
                }
                auto& w = writes_.front();
                const auto taken = std::min(left, w.records);
                left -= taken;
                w.records -= taken;
                w.error = w.error ? w.error : run.error; // the first one
                w.delivered += run.delivered * taken;
                if (w.records > 0)
                    continue;
                unacked_bytes_ -= w.frame_size;
                posts_unacked_ -= w.pace == results::when_convenient ? 1 : 0;
                acked_.emplace_back(std::move(w.handler), ack_run{1, w.error, w.delivered});
                writes_.pop_front();
            }
        });
    if (!ok || !listed)
        return failure(error::invalid_data, "malformed frame from the host");
    // Room in the window again: writes waiting past it go out, in order.
    // (A loss told is no write: it takes no room in the window.)
    while (!deferred_writes_.empty() &&
           (unacked_bytes_ == 0 || deferred_writes_.front().records == 0 ||
            unacked_bytes_ + deferred_writes_.front().frame.size() <= max_unacked_bytes)) {
        auto next = std::move(deferred_writes_.front());
        deferred_writes_.pop_front();
        if (next.records == 0)
            send(std::move(next.frame));
        else
            send_write(std::move(next.frame), std::move(next.handler), next.records, next.pace);
    }
    // The writes completed, in order. This is a read's completion, not the
    // initiating function, so a handler runs here and now (no post per
    // write); one that writes again appends to writes_ safely.
    std::vector<std::pair<write_handler, ack_run>> done;
    done.swap(acked_);
    for (auto& [h, run] : done)
        h(to_error(run.error), run.delivered);
    if (acked_.empty()) { // keep the capacity for the next frame
        done.clear();
        acked_.swap(done);
    }
    return {};
}

bool client_protocol::sender_for(std::uint32_t origin, std::uint32_t& sender) const
{
    sender = 0;
    if (origin == 0)
        return true;
    const auto known = origin_ids_.find(origin);
    if (known == origin_ids_.end())
        return false;
    sender = known->second;
    return true;
}

frame_action client_protocol::on_records(const frame_view& frame)
{
    records_frame m;
    if (!decode(frame.body, m))
        return failure(error::invalid_data, "malformed frame from the host");
    std::uint32_t sender = 0;
    if (!sender_for(m.origin, sender)) // never announced
        return failure(error::invalid_data, "malformed frame from the host");
    auto it = readers_.find(m.handle);
    if (it == readers_.end())
        return {}; // closed here already; the host learns of the close in order
    auto& r = it->second;
    // One walk: each record is counted as its length is checked; a length
    // that lies undoes the frame's records (the connection ends).
    const auto had = r.records.size();
    if (!scan_record_list(m.records.bytes, [&](byte_span record) {
            r.records.push_back(
                {static_cast<std::uint32_t>(record.size()), std::exchange(r.gap, 0), sender});
        })) {
        r.records.resize(had);
        return failure(error::invalid_data, "malformed frame from the host");
    }
    // The list is kept as it came, lengths and all: one copy per frame.
    r.bytes.append(reinterpret_cast<const char*>(m.records.bytes.data()), m.records.bytes.size());
    return about(frame_action::kind::records, m.handle);
}

frame_action client_protocol::on_records_lane(const frame_view& frame)
{
    records_lane_frame m;
    if (!decode(frame.body, m))
        return failure(error::invalid_data, "malformed frame from the host");
    std::uint32_t sender = 0;
    if (!sender_for(m.origin, sender)) // never announced
        return failure(error::invalid_data, "malformed frame from the host");
    const auto lane = reader_lanes_.find(m.lane);
    if (lane == reader_lanes_.end())
        return failure(error::invalid_data, "records in a lane the host never opened");
    auto it = readers_.find(m.handle);
    if (it == readers_.end())
        return {};
    auto& r = it->second;
    const auto had = r.records.size();
    bool inside = true;
    if (!for_each_lane_descriptor(
            m.descriptors.bytes,
            [&](lane_descriptor d) {
                const auto bytes = lane->second->at(d);
                inside = inside && !bytes.empty();
                r.records.push_back({d.length, std::exchange(r.gap, 0), sender, bytes.data()});
            }) ||
        !inside || r.records.size() == had) {
        r.records.resize(had);
        return failure(error::invalid_data, "a lane descriptor from the host that lies");
    }
    if (std::find(r.lanes.begin(), r.lanes.end(), lane->second) == r.lanes.end())
        r.lanes.push_back(lane->second);
    return about(frame_action::kind::records, m.handle);
}

frame_action client_protocol::on_lane_open(const frame_view& frame)
{
    lane_open_frame m;
    if (!decode(frame.body, m))
        return failure(error::invalid_data, "malformed frame from the host");
    const bool writer = m.role == static_cast<std::uint32_t>(lane_role::writer);
    if (m.lane == 0) { // refused: the handle keeps the socket
        if (writer)
            (void)lanes_.opened(m.handle, 0, nullptr);
        return about(frame_action::kind::lanes_changed, m.handle);
    }
    if (fds_.empty())
        return failure(error::invalid_data, "a lane_open without its fd");
    const int fd = fds_.front();
    fds_.pop_front();
    error_code ec;
    auto memory = lane_mapping::map(fd, m.size, writer, ec);
    ::close(fd);
    if (!writer) {
        if (!memory)
            return failure(error::invalid_data,
                           "a lane from the host that cannot be read safely: " + ec.message());
        reader_lanes_[m.lane] = std::move(memory);
        return {};
    }
    if (!memory) { // kept on the socket; the host forgets the lane
        (void)lanes_.opened(m.handle, 0, nullptr);
        send_lane_closed(m.lane);
        return about(frame_action::kind::lanes_changed, m.handle);
    }
    // Told before any descriptor into it can follow.
    byte_buffer mapped;
    encode(mapped, lane_mapped_frame{m.lane});
    send(std::move(mapped));
    if (const auto replaced = lanes_.opened(m.handle, m.lane, std::move(memory)))
        send_lane_closed(replaced);
    return about(frame_action::kind::lanes_changed, m.handle);
}

frame_action client_protocol::on_lane_close(const frame_view& frame)
{
    lane_close_frame m;
    if (!decode(frame.body, m))
        return failure(error::invalid_data, "malformed frame from the host");
    if (auto it = reader_lanes_.find(m.lane); it != reader_lanes_.end()) {
        // Every record of it was read and reported before the host lets it
        // go; a record still held here would be a host's mistake, and is
        // copied out rather than read from memory that may change.
        for (auto& [handle, r] : readers_)
            if (std::find(r.lanes.begin(), r.lanes.end(), it->second) != r.lanes.end())
                r.copy_out_of_lanes();
        reader_lanes_.erase(it);
        return {};
    }
    if (lanes_.closing(m.lane))
        send_lane_closed(m.lane);
    return about(frame_action::kind::lanes_changed, 0);
}

void client_protocol::send_lane_closed(std::uint32_t lane)
{
    byte_buffer frame;
    encode(frame, lane_closed_frame{lane});
    send(std::move(frame));
}

frame_action client_protocol::on_revoked(std::uint32_t handle, error_code ec,
                                         std::string_view pattern)
{
    auto restorable = restore_.find(handle);
    if (!pattern.empty()) { // one subscription is gone: a reconnect does not bring it back
        if (restorable != restore_.end()) {
            const auto key = slotbus::fold_case(pattern);
            std::erase_if(restorable->second.patterns, [&](const std::string& p) {
                std::error_code parse_ec;
                return topic_pattern::parse(p, parse_ec).key() == key;
            });
        }
        return {};
    }
    if (restorable != restore_.end())
        restore_.erase(restorable);
    auto it = readers_.find(handle);
    if (it == readers_.end())
        return {}; // a writer: its writes fail at the host
    // What the host pushed and took back is not this reader's any more.
    auto& r = it->second;
    r.clear();
    r.unreported = r.stale = 0;
    r.dirty = false;
    std::erase(dirty_readers_, handle);
    r.revoked = ec ? ec : error_code(error::access_denied);
    auto a = about(frame_action::kind::revoked, handle);
    a.ec = r.revoked;
    return a;
}

frame_action client_protocol::answer(std::uint32_t request, std::uint32_t error, reply r)
{
    auto it = requests_.find(request);
    if (it == requests_.end()) // an answer to nothing asked
        return failure(error::invalid_data, "malformed frame from the host");
    const auto what = it->second.what;
    const auto handle = it->second.handle;
    frame_action a;
    if (what == waiting_request::kind::caller) {
        a.what = frame_action::kind::answered;
        a.request.emplace(std::move(it->second.handler));
        a.ec = to_error(error);
        a.answer = std::move(r);
    }
    requests_.erase(it);
    if (what == waiting_request::kind::restore)
        return restore_answered(handle, to_error(error));
    return a;
}

frame_action client_protocol::restore_answered(std::uint32_t handle, error_code ec)
{
    auto known = restore_.find(handle);
    if (!ec) {
        if (known != restore_.end())
            known->second.conflicts = 0;
        return {};
    }
    // Taken: most likely by this slot's old incarnation, which the host has
    // not reaped yet (it was stalled). Try the whole restore again later;
    // after a few tries, the name belongs to someone else.
    constexpr int tries = 5;
    if (ec == error::already_exists && known != restore_.end() && ++known->second.conflicts < tries)
        return failure(error::broken_pipe, "restore met the old incarnation");
    // The name was taken meanwhile, or the host refuses it: this handle is lost.
    if (known != restore_.end())
        restore_.erase(known);
    if (readers_.erase(handle) == 0)
        return {};
    auto a = about(frame_action::kind::reader_lost, handle);
    a.ec = ec;
    return a;
}

lost_work client_protocol::fail(bool reconnect)
{
    lost_work lost;
    awaiting_welcome_ = false;
    reset_output();
    dirty_readers_.clear();
    lanes_.reset();
    close_fds();
    for (auto& [handle, r] : readers_) // the host that held their lanes' records is gone
        r.copy_out_of_lanes();
    reader_lanes_.clear();
    reports_due_ = false;
    const error_code gone = error::broken_pipe;
    // A restore whose answer will not come ends as a refused one would.
    std::vector<std::uint32_t> restores;
    for (auto& [id, w] : requests_) {
        if (w.what == waiting_request::kind::caller)
            lost.requests.push_back(std::move(w.handler));
        else if (w.what == waiting_request::kind::restore)
            restores.push_back(w.handle);
    }
    requests_.clear();
    for (auto handle : restores)
        if (auto a = restore_answered(handle, gone); a.what == frame_action::kind::reader_lost)
            lost.lost_readers.emplace_back(handle, a.ec);
    // Sent, and no result came: the host may have delivered them or not.
    for (auto& w : writes_)
        lost.sent.push_back(std::move(w.handler));
    writes_.clear();
    unacked_bytes_ = 0;
    posts_unacked_ = 0;
    asked_for_results_ = false;
    for (auto& d : deferred_writes_)
        lost.queued.push_back(std::move(d.handler));
    deferred_writes_.clear();
    for (const auto& [request, read] : polls_) // their answers will not come
        lost.polls.push_back(read);
    polls_.clear();
    if (reconnect) {
        // The slots went with the connection, the records the host held
        // included; reads waiting on them stay and are served by the slots
        // re-created after the reconnect. What this end holds already is
        // still read first (and never reported: the new slot never had it),
        // then the first record of the new slot says records may have been
        // lost between them, how many unknown.
        for (auto& [handle, r] : readers_) {
            r.stale = static_cast<std::uint32_t>(r.records.size());
            r.gap = gap_unknown;
            r.unreported = 0;
            r.unreported_bytes = 0;
            r.dirty = false;
            r.window_sent = false;
            r.window_told = 0; // the next host has been told nothing
        }
        hold_reports_ = true;
    }
    return lost;
}

// ---- output -----------------------------------------------------------------------------------

bool client_protocol::take_output(byte_buffer& into)
{
    if (reports_due_ || !pending_.empty())
        emit_reports();
    if (pending_.empty())
        return false;
    into.clear();
    into.swap(pending_);
    write_frames_.reset();
    post_frames_.reset();
    return true;
}

void client_protocol::reset_output() noexcept
{
    pending_.clear();
    write_frames_.reset();
    post_frames_.reset();
}

void client_protocol::send(byte_buffer&& frame)
{
    // Reads reported so far go first: the host must see them before whatever
    // this frame asks (an info, a poll).
    emit_reports();
    if (pending_.empty())
        pending_.swap(frame);
    else
        pending_.insert(pending_.end(), frame.begin(), frame.end());
}

void client_protocol::ping()
{
    byte_buffer frame;
    encode(frame, ping_frame{++ping_nonce_});
    send(std::move(frame));
}

void client_protocol::forget_reports() noexcept
{
    for (auto& [handle, r] : readers_) {
        r.unreported = 0;
        r.unreported_bytes = 0;
        r.dirty = false;
    }
    dirty_readers_.clear();
}

void client_protocol::emit_reports()
{
    if (dirty_readers_.empty()) {
        reports_due_ = false; // nothing owed
        return;               // the usual case, on every write
    }
    if (hold_reports_)
        return;
    for (auto handle : dirty_readers_) {
        auto it = readers_.find(handle);
        if (it == readers_.end() || !it->second.dirty)
            continue;
        it->second.window_told = window_for(handle);
        encode(pending_, read_report_frame{handle, it->second.unreported, it->second.window_told});
        it->second.unreported = 0;
        it->second.unreported_bytes = 0;
        it->second.dirty = false;
    }
    dirty_readers_.clear();
    reports_due_ = false;
}

// ---- writes -----------------------------------------------------------------------------------

void client_protocol::write(std::uint32_t handle,
                            std::span<const boost::asio::const_buffer> records, write_handler&& h,
                            results pace, std::size_t frame_size)
{
    const bool posted = pace == results::when_convenient;
    emit_reports();
    (posted ? post_frames_ : write_frames_)
        .append_all(pending_, handle, records, [](const boost::asio::const_buffer& r) {
            return byte_span(static_cast<const std::uint8_t*>(r.data()), r.size());
        });
    unacked_bytes_ += frame_size;
    posts_unacked_ += posted ? 1 : 0;
    writes_.push_back({std::move(h), frame_size, static_cast<std::uint32_t>(records.size()), pace});
}

void client_protocol::tell_lost(std::uint32_t handle, std::uint32_t count)
{
    byte_buffer frame;
    encode(frame, lost_frame{handle, count});
    if (deferred_writes_.empty())
        send(std::move(frame));
    else // behind the writes waiting for the window, so the readers hear it in its place
        deferred_writes_.push_back({std::move(frame),
                                    [](boost::system::error_code, std::uint32_t) {}, 0,
                                    results::prompt});
}

void client_protocol::write_frame(byte_buffer&& frame, write_handler&& h, std::uint32_t records,
                                  results pace)
{
    if (!may_write_now(frame.size())) {
        deferred_writes_.push_back({std::move(frame), std::move(h), records, pace});
        if (posts_unacked_ > 0 && !asked_for_results_) {
            // Posted writes hold the window: their results come before the pong.
            asked_for_results_ = true;
            ping();
        }
        return;
    }
    send_write(std::move(frame), std::move(h), records, pace);
}

void client_protocol::send_write(byte_buffer&& frame, write_handler&& h, std::uint32_t records,
                                 results pace)
{
    posts_unacked_ += pace == results::when_convenient ? 1 : 0;
    unacked_bytes_ += frame.size();
    writes_.push_back({std::move(h), frame.size(), records, pace});
    const auto type = static_cast<frame_type>(frame[4]);
    const bool by_lane = type == frame_type::write_lane || type == frame_type::post_lane;
    const auto handle =
        by_lane ? boost::endian::load_little_u32(frame.data() + frame_header_size) : 0;
    send(std::move(frame));
    if (by_lane)
        if (const auto closed = lanes_.sent(handle)) // its last frame is out
            send_lane_closed(closed);
}

// ---- requests ---------------------------------------------------------------------------------

void client_protocol::request(byte_buffer&& frame, std::uint32_t request_id, reply_handler&& h)
{
    requests_.emplace(request_id, waiting_request{waiting_request::kind::caller, 0, std::move(h)});
    send(std::move(frame));
}

// ---- reads ------------------------------------------------------------------------------------

std::size_t reader_state::wire(std::size_t n) const noexcept
{
    std::size_t bytes_taken = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (!records[i].lane)
            bytes_taken += 4 + records[i].size;
    return bytes_taken;
}

void reader_state::copy_out_of_lanes()
{
    if (lanes.empty())
        return;
    std::string copied;
    std::size_t at = begin;
    for (auto& r : records) {
        char length[4];
        boost::endian::store_little_u32(reinterpret_cast<std::uint8_t*>(length), r.size);
        copied.append(length, 4);
        if (r.lane) {
            copied.append(reinterpret_cast<const char*>(r.lane), r.size);
            r.lane = nullptr;
        } else {
            copied.append(bytes, at + 4, r.size);
            at += 4 + r.size;
        }
    }
    bytes = std::move(copied);
    begin = 0;
    lanes.clear();
}

void reader_state::pop_front(std::size_t n, std::size_t wire)
{
    begin += wire;
    records.erase(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(n));
    if (records.empty()) {
        bytes.clear();
        begin = 0;
        lanes.clear(); // no record points into them any more
    } else if (begin > 64 * 1024 && begin > bytes.size() / 2) {
        bytes.erase(0, begin); // now and then, so the buffer does not grow
        begin = 0;
    }
}

reader_state* client_protocol::find_reader(std::uint32_t handle) noexcept
{
    const auto it = readers_.find(handle);
    return it == readers_.end() ? nullptr : &it->second;
}

void client_protocol::add_reader(std::uint32_t handle, std::uint32_t read_timeout)
{
    readers_[handle].read_timeout = read_timeout;
}

bool client_protocol::drop_reader(std::uint32_t handle)
{
    auto it = readers_.find(handle);
    if (it == readers_.end())
        return false;
    // Reads not reported yet go ahead of the close that follows: the host
    // would otherwise hand them to a duplicate as unread.
    if (it->second.dirty && !hold_reports_) {
        encode(pending_, read_report_frame{handle, it->second.unreported, 0});
        std::erase(dirty_readers_, handle);
    }
    readers_.erase(it);
    return true;
}

std::uint32_t client_protocol::window_for(std::uint32_t handle) const
{
    if (window_ != 0)
        return window_;
    return read_waits_ && read_waits_(handle) ? 1 : 0;
}

void client_protocol::first_read(std::uint32_t handle, reader_state& r)
{
    if (window_ == 0 ? r.window_told != 0 || r.dirty : r.window_sent)
        return; // with 0: a record asked for at each read the host was told to hold
    r.window_sent = true;
    r.dirty = true;
    dirty_readers_.push_back(handle);
}

void client_protocol::read_ended(std::uint32_t handle)
{
    auto* r = find_reader(handle);
    if (window_ != 0 || !r || r->window_told == 0 || r->dirty)
        return;
    r->dirty = true; // the next report tells the host to hold what comes
    dirty_readers_.push_back(handle);
    reports_due_ = true;
}

void client_protocol::poll(std::uint32_t handle, std::uint64_t read_op)
{
    // Records may be on their way: the host answers after pushing whatever
    // it has — and after telling of a timeout another handle of the slot set
    // meanwhile.
    const auto request = next_request_id();
    polls_.emplace(request, std::make_pair(handle, read_op));
    byte_buffer frame;
    encode(frame, poll_frame{request, handle});
    send(std::move(frame));
}

client_protocol::report_due client_protocol::consumed(std::uint32_t handle, reader_state& r,
                                                      std::uint32_t n, std::uint64_t bytes)
{
    const auto from_before = std::min(n, r.stale); // held across a reconnect: not the new slot's
    r.stale -= from_before;
    if (n == from_before)
        return report_due::later;
    r.unreported += n - from_before;
    r.unreported_bytes += bytes;
    if (!r.dirty) {
        r.dirty = true;
        dirty_readers_.push_back(handle);
    }
    // Reads are reported in batches: when a quarter of the window or
    // report_bytes was read (so the host refills it, and lets a writer's
    // lane go, early), or ahead of any other frame this
    // connection sends — which keeps info() through this connection exact.
    // One frame per read would cost a syscall each way per record. A reader
    // that has read all it holds reports when it waits again (start_read), or
    // with what it sends first: a reply and its request's report then share
    // one socket write and one wake-up of the host.
    if (r.unreported >= std::max<std::uint32_t>(1, window_ / 4) ||
        r.unreported_bytes >= report_bytes) {
        reports_due_ = true;
        return report_due::now;
    }
    return r.records.empty() ? report_due::when_idle : report_due::later;
}

void client_protocol::prune_senders()
{
    std::unordered_set<std::uint32_t> live;
    for (const auto& [id, ours] : origin_ids_)
        live.insert(ours);
    for (const auto& [handle, r] : readers_)
        for (const auto& p : r.records)
            live.insert(p.sender);
    std::erase_if(senders_, [&](const auto& entry) { return !live.count(entry.first); });
}

std::shared_ptr<const record_sender> client_protocol::sender_of(std::uint32_t id) const
{
    const auto it = senders_.find(id);
    return it == senders_.end() ? nullptr : it->second;
}

// ---- what a reconnect restores ----------------------------------------------------------------

void client_protocol::remember(std::uint32_t handle, restorable what)
{
    restore_[handle] = std::move(what);
}

void client_protocol::remember_pattern(std::uint32_t handle, std::string pattern, bool subscribed)
{
    auto it = restore_.find(handle);
    if (it == restore_.end())
        return;
    auto& list = it->second.patterns;
    if (subscribed)
        list.push_back(std::move(pattern));
    else
        std::erase(list, pattern);
}

void client_protocol::remember_timeout(std::uint32_t handle, std::uint32_t read_timeout)
{
    if (auto it = restore_.find(handle); it != restore_.end())
        it->second.read_timeout = read_timeout;
}

void client_protocol::forget(std::uint32_t handle)
{
    restore_.erase(handle);
}

const restorable* client_protocol::restoring(std::uint32_t handle) const
{
    const auto it = restore_.find(handle);
    return it == restore_.end() ? nullptr : &it->second;
}

std::vector<std::uint32_t> client_protocol::restore(const std::function<bool(std::uint32_t)>& waits)
{
    std::vector<std::uint32_t> dropped;
    for (auto it = restore_.begin(); it != restore_.end();) {
        const auto handle = it->first;
        const restorable& what = it->second;
        if (what.reader && !what.recreate) {
            // An attached duplicate cannot come back: its token was spent.
            if (readers_.erase(handle))
                dropped.push_back(handle);
            it = restore_.erase(it);
            continue;
        }
        const auto request = next_request_id();
        byte_buffer frame;
        if (what.reader)
            encode(frame, create_frame{request, handle, what.max_message_size, what.read_timeout,
                                       what.byte_budget, what.overflow, what.name});
        else
            encode(frame, open_frame{request, handle, open_rebind | what.open_flags, what.name});
        waiting_request w;
        w.what = waiting_request::kind::restore;
        w.handle = handle;
        requests_.emplace(request, std::move(w));
        send(std::move(frame));
        for (const auto& pattern : what.patterns) {
            const auto subscribe = next_request_id();
            byte_buffer s;
            encode(s, subscribe_frame{subscribe, handle, pattern});
            waiting_request again;
            again.what = waiting_request::kind::resubscribe;
            requests_.emplace(subscribe, std::move(again));
            send(std::move(s));
        }
        ++it;
    }
    // From here, reports may follow the frames that re-create their slots.
    hold_reports_ = false;
    // Readers that wait get their window back, now that their slots exist.
    for (auto& [handle, r] : readers_)
        if (!r.dirty && waits(handle)) {
            r.window_sent = true;
            r.dirty = true;
            dirty_readers_.push_back(handle);
        }
    reports_due_ = true;
    return dropped;
}

} // namespace slotbus::detail
