#include "slotbus/connection.hpp"

#include "slotbus/address.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/topic_pattern.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstdlib>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_set>

namespace slotbus {
namespace detail {

namespace {

error_code to_error(std::uint32_t value)
{
    if (value == 0)
        return {};
    return std::error_code(static_cast<int>(value), error_category());
}

/// A host of another uid is trusted when the socket is that uid's and no one
/// but that uid or root can write in its directory or any directory above
/// it: then no one else can have put a listener on that path (a shared bus,
/// D-Bus system bus style). A directory in /tmp, or of another user, is not.
bool shared_by_its_owner(const std::string& socket_path, std::uint32_t uid)
{
    struct stat st {};
    if (::lstat(socket_path.c_str(), &st) != 0 || st.st_uid != uid)
        return false;
    const auto slash = socket_path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : socket_path.substr(0, slash + 1);
    char* real = ::realpath(dir.c_str(), nullptr); // every component a real directory
    if (!real)
        return false;
    std::string at(real);
    std::free(real);
    while (true) {
        if (::lstat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
            (st.st_uid != uid && st.st_uid != 0) || (st.st_mode & 022) != 0)
            return false;
        if (at == "/")
            return true;
        const auto up = at.find_last_of('/');
        at = up == 0 ? "/" : at.substr(0, up);
    }
}
} // namespace

connection_impl::connection_impl(std::optional<asio::any_io_executor> executor,
                                 std::uint32_t window, std::string token)
    : own_(executor ? nullptr : std::make_unique<asio::io_context>(1)),
      executor_(executor ? *executor : own_->get_executor()), socket_(executor_), window_(window),
      token_(std::move(token)), run_timer_(executor_)
{
}

connection_impl::~connection_impl() = default;

// ---- entry points ---------------------------------------------------------------------------

void connection_impl::start_connect(std::string address, std::string client_name, reply_handler h)
{
    on_executor([self = shared_from_this(), address = std::move(address),
                 name = std::move(client_name),
                 h = std::move(h)]() mutable { self->connect_to(address, name, std::move(h)); });
}

void connection_impl::connect_to(const std::string& address, const std::string& client_name,
                                 reply_handler h)
{
    connecting_.emplace(std::move(h));
    auto path = socket_path_of(address);
    socket_.async_connect(asio::local::stream_protocol::endpoint(path), [self = shared_from_this(),
                                                                         generation = generation_,
                                                                         name = client_name,
                                                                         path](error_code ec) {
        if (generation != self->generation_ || !self->connecting_)
            return; // given up on already
        if (!ec) {
            // Whoever listens there hears our writes and answers our reads:
            // it must be our own uid or root (a socket another user put in
            // a shared directory is not our host).
            ucred cred{};
            socklen_t len = sizeof cred;
            if (::getsockopt(self->socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) !=
                0) {
                ec = error_code(errno, boost::system::system_category());
            } else if (cred.uid != ::geteuid() && cred.uid != 0 &&
                       !shared_by_its_owner(path, cred.uid)) {
                self->failure_ = "the host on " + path + " runs as uid " +
                                 std::to_string(cred.uid) + ", not as this user (uid " +
                                 std::to_string(::geteuid()) +
                                 ") or root, and others than that uid and root may write "
                                 "where the socket is: not trusted";
                ec = error::access_denied;
            }
            if (ec) {
                error_code ignored;
                self->socket_.close(ignored);
            }
        }
        if (ec) {
            auto handler = std::move(*self->connecting_);
            self->connecting_.reset();
            asio::post(self->executor_, asio::append(std::move(handler), ec, reply{}));
            return;
        }
        byte_buffer frame;
        encode(frame, hello_frame{protocol_magic, protocol_version, protocol_version,
                                  static_cast<std::uint32_t>(::getpid()), name, self->token_});
        self->send(std::move(frame));
        self->read_loop();
    });
}

void connection_impl::start_request(byte_buffer frame, std::uint32_t request_id, reply_handler h)
{
    on_executor([self = shared_from_this(), frame = std::move(frame), request_id,
                 h = std::move(h)]() mutable {
        if (const auto failed = self->call_error()) {
            asio::post(self->executor_, asio::append(std::move(h), failed, reply{}));
            return;
        }
        self->requests_.emplace(request_id, std::move(h));
        self->send(std::move(frame));
    });
}

void connection_impl::start_write(std::uint32_t handle, std::span<const asio::const_buffer> records,
                                  write_handler h, results pace)
{
    const bool posted = pace == results::when_convenient;
    auto bytes = [](const asio::const_buffer& r) {
        return byte_span(static_cast<const std::uint8_t*>(r.data()), r.size());
    };
    std::size_t frame_size = 0; // at most, on the wire
    for (const auto& r : records)
        frame_size += frame_header_size + 8 + r.size();
    const auto count = static_cast<std::uint32_t>(records.size());
    // The hot path: on the connection's own thread, the records go straight
    // into the output, joining the write frame before them when they can.
    // (The window is read only there: off that thread it belongs to another.)
    const auto window_full = [&] {
        return unacked_bytes_ > 0 && unacked_bytes_ + frame_size > max_unacked_bytes;
    };
    if (on_this_thread() && !call_error() && !window_full() && deferred_writes_.empty()) {
        emit_reports();
        (posted ? post_frames_ : write_frames_).append_all(pending_, handle, records, bytes);
        unacked_bytes_ += frame_size;
        posts_unacked_ += posted ? 1 : 0;
        writes_.push_back({std::move(h), frame_size, count, pace});
        flush();
        return;
    }
    byte_buffer frame;
    frame.reserve(frame_size);
    record_list_builder builder(posted ? frame_type::post : frame_type::write);
    for (const auto& r : records)
        builder.append(frame, handle, bytes(r));
    on_executor([self = shared_from_this(), frame = std::move(frame), h = std::move(h), count,
                 pace]() mutable {
        if (const auto failed = self->call_error()) {
            // Never sent: it was not delivered (a write the host may have
            // taken fails with netname_deleted instead, in fail()).
            asio::post(self->executor_, asio::append(std::move(h), failed, std::uint32_t{0}));
            return;
        }
        const bool full =
            self->unacked_bytes_ > 0 && self->unacked_bytes_ + frame.size() > max_unacked_bytes;
        if (full || !self->deferred_writes_.empty()) {
            self->deferred_writes_.push_back({std::move(frame), std::move(h), count, pace});
            if (self->posts_unacked_ > 0 && !self->asked_for_results_) {
                // Posted writes hold the window: their results come before the pong.
                self->asked_for_results_ = true;
                byte_buffer ping;
                encode(ping, ping_frame{++self->ping_nonce_});
                self->send(std::move(ping));
            }
            return;
        }
        self->send_write(std::move(frame), std::move(h), count, pace);
    });
}

error_code connection_impl::call_error() const noexcept
{
    const bool restoring = run_ && !run_->stopping && !run_->connected;
    if (!broken_ && !restoring)
        return {};
    if (broken_ && std::error_code(broken_).category() == error_category())
        return broken_; // the host's reason (invalid_data, …) or broken_pipe
    return error::broken_pipe;
}

bool connection_impl::on_this_thread() const
{
    if (own_)
        return true; // used by one thread at a time, by contract
    const auto* io = executor_.target<asio::io_context::executor_type>();
    return io && io->running_in_this_thread(); // other executors take the posted path
}

void connection_impl::start_read(std::uint32_t handle, read_handler h, asio::mutable_buffer into,
                                 std::size_t batch)
{
    on_executor([self = shared_from_this(), handle, h = std::move(h), into, batch]() mutable {
        read_op op{self->next_read_op_++, std::move(h), into, nullptr,
                   std::max<std::size_t>(batch, 1)};
        auto it = self->readers_.find(handle);
        const bool gone_for_good = self->broken_ && !self->reconnecting();
        if (it == self->readers_.end() || (gone_for_good && it->second.records.empty())) {
            self->complete_read(
                op, self->broken_ ? self->call_error() : error_code(error::invalid_handle), {}, 0);
            return;
        }
        reader_state& r = it->second;
        if (r.revoked) {
            self->complete_read(op, r.revoked, {}, 0);
            return;
        }
        if (!r.window_sent) {
            // The host pushes nothing ahead until a reader first reads: a
            // handle that never reads holds back no records from its duplicates.
            r.window_sent = true;
            r.dirty = true;
            self->dirty_readers_.push_back(handle);
        }
        r.waiting.push_back(std::move(op));
        read_op& queued = r.waiting.back();
        // Per-operation cancellation: a bound cancellation slot ends this read alone.
        auto cancel = std::visit(
            [](auto& handler) { return asio::get_associated_cancellation_slot(handler); },
            queued.handler);
        if (cancel.is_connected())
            cancel.assign(
                [weak = std::weak_ptr(self), handle, id = queued.id](asio::cancellation_type) {
                    if (auto strong = weak.lock())
                        strong->finish(handle, id, asio::error::operation_aborted);
                });
        if (r.records.empty()) {
            if (r.read_timeout == 0 && self->call_error()) {
                // Between connections: nothing is queued here, say so at once.
                self->finish(handle, queued.id, error::sem_timeout);
                return;
            }
            if (r.read_timeout == 0) {
                // Records may be on their way: ask the host, which answers
                // after pushing whatever it has — and after telling of a
                // timeout another handle of the slot set meanwhile.
                const auto request = self->next_request_id();
                self->polls_.emplace(request, std::make_pair(handle, queued.id));
                byte_buffer frame;
                encode(frame, poll_frame{request, handle});
                self->send(std::move(frame));
            } else {
                self->arm_wait(handle, queued, r.read_timeout);
            }
        }
        self->serve(handle, r);
        if (!r.waiting.empty())
            self->reports_due_ = true; // it waits: the host must know what it has read
        self->flush();
    });
}

void connection_impl::add_reader(std::uint32_t handle, std::uint32_t read_timeout)
{
    on_executor([self = shared_from_this(), handle, read_timeout] {
        self->readers_[handle].read_timeout = read_timeout;
    });
}

void connection_impl::cancel_reads(std::uint32_t handle)
{
    on_executor([self = shared_from_this(), handle] {
        auto it = self->readers_.find(handle);
        if (it == self->readers_.end())
            return;
        auto waiting = std::move(it->second.waiting);
        it->second.waiting.clear();
        for (auto& op : waiting)
            self->complete_read(op, asio::error::operation_aborted, {}, 0);
    });
}

void connection_impl::drop_reader(std::uint32_t handle)
{
    on_executor([self = shared_from_this(), handle] {
        auto it = self->readers_.find(handle);
        if (it == self->readers_.end())
            return;
        // Reads not reported yet go ahead of the close that follows: the
        // host would otherwise hand them to a duplicate as unread.
        if (it->second.dirty && !(self->run_ && !self->run_->connected)) {
            encode(self->pending_, read_report_frame{handle, it->second.unreported, 0});
            std::erase(self->dirty_readers_, handle);
        }
        auto waiting = std::move(it->second.waiting);
        self->readers_.erase(it);
        for (auto& op : waiting)
            self->complete_read(op, asio::error::operation_aborted, {}, 0);
    });
}

void connection_impl::close()
{
    auto stop = [](connection_impl& self) {
        if (self.run_)
            self.run_->stopping = true; // no reconnect after this
        if (self.broken_)
            self.shut_down(error::broken_pipe); // between attempts: end what waits
        else
            self.fail(asio::error::operation_aborted);
    };
    if (own_) {
        // Nobody else runs the owned context: close here, then let every
        // aborted operation finish so no handler keeps this object alive —
        // unless this is a handler, whose run() finishes them itself.
        stop(*this);
        if (own_->get_executor().running_in_this_thread())
            return;
        own_->restart();
        own_->run();
        return;
    }
    on_executor([self = shared_from_this(), stop] { stop(*self); });
}

// ---- I/O ------------------------------------------------------------------------------------

void connection_impl::send(byte_buffer&& frame)
{
    // Reads reported so far go first: the host must see them before whatever
    // this frame asks (an info, a poll).
    emit_reports();
    if (pending_.empty())
        pending_.swap(frame);
    else
        pending_.insert(pending_.end(), frame.begin(), frame.end());
    flush();
}

void connection_impl::emit_reports()
{
    if (dirty_readers_.empty()) {
        reports_due_ = false; // nothing owed
        return;               // the usual case, on every write
    }
    // Between connections, and until a reconnect has re-created its slots,
    // reports wait: the host must see the slots before any report on them.
    if (run_ && !run_->connected)
        return;
    for (auto handle : dirty_readers_) {
        auto it = readers_.find(handle);
        if (it == readers_.end() || !it->second.dirty)
            continue;
        encode(pending_, read_report_frame{handle, it->second.unreported, window_});
        it->second.unreported = 0;
        it->second.dirty = false;
    }
    dirty_readers_.clear();
    reports_due_ = false;
}

void connection_impl::send_write(byte_buffer&& frame, write_handler h, std::uint32_t records,
                                 results pace)
{
    posts_unacked_ += pace == results::when_convenient ? 1 : 0;
    unacked_bytes_ += frame.size();
    writes_.push_back({std::move(h), frame.size(), records, pace});
    send(std::move(frame));
}

void connection_impl::flush()
{
    if (write_active_ || broken_)
        return; // reports coalesce until the write under way is done
    if (reports_due_ || !pending_.empty())
        emit_reports();
    if (pending_.empty())
        return;
    writing_.clear();
    writing_.swap(pending_);
    write_frames_.reset();
    post_frames_.reset();
    write_active_ = true;
    // One write at a time; whatever queues meanwhile goes out with the next.
    asio::async_write(
        socket_, asio::buffer(writing_),
        [self = shared_from_this(), generation = generation_](const error_code& ec, std::size_t) {
            if (generation != self->generation_)
                return; // a socket given up on
            self->write_active_ = false;
            if (ec)
                self->fail(ec);
            else
                self->flush();
        });
}

std::size_t connection_impl::max_frame() const noexcept
{
    // Until the welcome says otherwise, a frame is bounded by a sane default.
    return max_frame_size_ ? max_frame_size_ : (1u << 20) + 64;
}

void connection_impl::read_loop()
{
    const auto room = in_.prepare(max_frame());
    socket_.async_read_some(
        asio::buffer(room.data(), room.size()),
        [self = shared_from_this(), generation = generation_](const error_code& ec, std::size_t n) {
            if (generation != self->generation_ || self->broken_)
                return; // a socket given up on
            if (ec) {
                self->fail(error::broken_pipe, ec.message());
                return;
            }
            self->last_heard_ = std::chrono::steady_clock::now();
            self->in_.commit(n);
            while (!self->broken_) {
                auto found = self->in_.next(self->max_frame());
                if (found.status == decoded_frame::need_more)
                    break;
                if (found.status == decoded_frame::invalid) {
                    self->fail(error::invalid_data, found.why);
                    return;
                }
                self->in_.consume(found.size);
                self->on_frame(found.frame);
            }
            if (!self->broken_) {
                self->flush();
                self->read_loop();
            }
        });
}

void connection_impl::on_frame(const frame_view& frame)
{
    auto malformed = [this] { fail(error::invalid_data, "malformed frame from the host"); };
    switch (frame.type) {
    case frame_type::welcome: {
        welcome_frame m;
        if (!decode(frame.body, m) || !connecting_)
            return malformed();
        max_record_size_ = m.max_record_size;
        max_frame_size_ = m.max_frame_size;
        origin_ids_.clear(); // a new connection numbers its origins afresh
        prune_senders();
        host_name_ = std::string(m.host_name);
        plugin_name_ = std::string(m.plugin);
        auto h = std::move(*connecting_);
        connecting_.reset();
        asio::post(executor_, asio::append(std::move(h), error_code{}, reply{}));
        return;
    }
    case frame_type::result: {
        result_frame m;
        if (!decode(frame.body, m))
            return malformed();
        if (auto poll = polls_.find(m.request_id); poll != polls_.end()) {
            // Everything the host had is here now, and so is any change of
            // the slot's timeout: a read still waiting times out now if it is
            // still 0, else waits as the slot's timeout says.
            const auto [handle, op_id] = poll->second;
            polls_.erase(poll);
            if (auto it = readers_.find(handle); it != readers_.end())
                for (auto& op : it->second.waiting)
                    if (op.id == op_id) {
                        arm_wait(handle, op, it->second.read_timeout);
                        break;
                    }
            return;
        }
        if (!answer(m.request_id, m.error,
                    {m.handle, m.value_a, m.value_b, std::string(m.text), {}}))
            return malformed();
        return;
    }
    case frame_type::info_result: {
        info_result_frame m;
        if (!decode(frame.body, m))
            return malformed();
        reply r;
        r.info = {m.max_message_size, m.next_size,    m.message_count,
                  m.read_timeout,     m.queued_bytes, m.dropped};
        if (!answer(m.request_id, m.error, std::move(r)))
            return malformed();
        return;
    }
    case frame_type::write_acks: {
        write_acks_frame m;
        bool ok = decode(frame.body, m);
        asked_for_results_ = false;
        // A run may end part-way into a batch, or cover several batches.
        ok = ok && for_each_ack_run(m.runs.bytes, [&](const ack_run& run) {
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
        if (!ok)
            return malformed();
        // Room in the window again: writes waiting past it go out, in order.
        while (!deferred_writes_.empty() &&
               (unacked_bytes_ == 0 ||
                unacked_bytes_ + deferred_writes_.front().frame.size() <= max_unacked_bytes)) {
            auto next = std::move(deferred_writes_.front());
            deferred_writes_.pop_front();
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
        return;
    }
    case frame_type::records: {
        records_frame m;
        if (!decode(frame.body, m))
            return malformed();
        std::uint32_t sender = 0;
        if (m.origin != 0) {
            const auto known = origin_ids_.find(m.origin);
            if (known == origin_ids_.end())
                return malformed(); // never announced
            sender = known->second;
        }
        auto it = readers_.find(m.handle);
        if (it == readers_.end())
            return; // closed here already; the host learns of the close in order
        auto& r = it->second;
        // One walk: each record is counted as its length is checked; a
        // length that lies undoes the frame's records (the connection ends).
        const auto had = r.records.size();
        if (!scan_record_list(m.records.bytes, [&](byte_span record) {
                r.records.push_back(
                    {static_cast<std::uint32_t>(record.size()), std::exchange(r.gap, 0), sender});
            })) {
            r.records.resize(had);
            return malformed();
        }
        // The list is kept as it came, lengths and all: one copy per frame.
        r.bytes.append(reinterpret_cast<const char*>(m.records.bytes.data()),
                       m.records.bytes.size());
        serve(m.handle, r);
        return;
    }
    case frame_type::gap: {
        gap_frame m;
        if (!decode(frame.body, m))
            return malformed();
        if (auto it = readers_.find(m.handle); it != readers_.end())
            if (auto& gap = it->second.gap; gap != gap_unknown) // saturates short of it
                gap = static_cast<std::uint32_t>(
                    std::min<std::uint64_t>(std::uint64_t{gap} + m.missed, gap_unknown - 1));
        return;
    }
    case frame_type::pong: // a heartbeat's answer: hearing anything is what counts
        return;
    case frame_type::timeout_changed: {
        timeout_changed_frame m;
        if (!decode(frame.body, m))
            return malformed();
        // The slot's timeout, set through another handle: reads waiting now
        // wait by it too (0 ends them at once, forever waits on).
        if (auto it = readers_.find(m.handle); it != readers_.end()) {
            it->second.read_timeout = m.read_timeout;
            auto& waiting = it->second.waiting; // a list: arm_wait erases only its own op
            for (auto op = waiting.begin(); op != waiting.end();)
                arm_wait(m.handle, *std::exchange(op, std::next(op)), m.read_timeout);
        }
        return;
    }
    case frame_type::admin_result: {
        admin_result_frame m;
        if (!decode(frame.body, m))
            return malformed();
        reply r;
        r.text.assign(m.json.bytes.begin(), m.json.bytes.end());
        if (!answer(m.request_id, m.error, std::move(r)))
            return malformed();
        return;
    }
    case frame_type::origin: {
        origin_frame m;
        if (!decode(frame.body, m) || m.id == 0 || origin_ids_.count(m.id))
            return malformed(); // ids are not reused within a connection
        const auto ours = next_sender_++;
        senders_[ours] = std::make_shared<const record_sender>(
            record_sender{m.uid, m.pid, std::string(m.plugin), std::string(m.name)});
        origin_ids_[m.id] = ours;
        return;
    }
    case frame_type::origins_forgotten: {
        origins_forgotten_frame m;
        if (!decode(frame.body, m))
            return malformed();
        std::erase_if(origin_ids_, [&](const auto& entry) { return entry.first < m.below; });
        prune_senders();
        return;
    }
    case frame_type::revoked: {
        revoked_frame m;
        if (!decode(frame.body, m))
            return malformed();
        on_revoked(m.handle, to_error(m.error), m.pattern);
        return;
    }
    case frame_type::fatal: {
        fatal_frame m;
        if (!decode(frame.body, m))
            return malformed();
        fail(to_error(m.error), std::string(m.message));
        return;
    }
    default:
        return malformed();
    }
}

void connection_impl::on_revoked(std::uint32_t handle, error_code ec, std::string_view pattern)
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
        return;
    }
    if (restorable != restore_.end())
        restore_.erase(restorable);
    auto it = readers_.find(handle);
    if (it == readers_.end())
        return; // a writer: its writes fail at the host
    // What the host pushed and took back is not this reader's any more.
    auto& r = it->second;
    r.clear();
    r.unreported = r.stale = 0;
    r.dirty = false;
    std::erase(dirty_readers_, handle);
    r.revoked = ec ? ec : error_code(error::access_denied);
    auto waiting = std::move(r.waiting);
    r.waiting.clear();
    for (auto& op : waiting)
        complete_read(op, r.revoked, {}, 0);
}

bool connection_impl::answer(std::uint32_t request, std::uint32_t error, reply r)
{
    auto it = requests_.find(request);
    if (it == requests_.end())
        return false; // an answer to nothing asked
    auto h = std::move(it->second);
    requests_.erase(it);
    asio::post(executor_, asio::append(std::move(h), to_error(error), std::move(r)));
    return true;
}

// ---- reads ----------------------------------------------------------------------------------

void connection_impl::reader_state::pop_front(std::size_t n, std::size_t wire)
{
    begin += wire;
    records.erase(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(n));
    if (records.empty()) {
        bytes.clear();
        begin = 0;
    } else if (begin > 64 * 1024 && begin > bytes.size() / 2) {
        bytes.erase(0, begin); // now and then, so the buffer does not grow
        begin = 0;
    }
}

void connection_impl::prune_senders()
{
    std::unordered_set<std::uint32_t> live;
    for (const auto& [id, ours] : origin_ids_)
        live.insert(ours);
    for (const auto& [handle, r] : readers_)
        for (const auto& p : r.records)
            live.insert(p.sender);
    std::erase_if(senders_, [&](const auto& entry) { return !live.count(entry.first); });
}

std::shared_ptr<const record_sender> connection_impl::sender_of(std::uint32_t id) const
{
    const auto it = senders_.find(id);
    return it == senders_.end() ? nullptr : it->second;
}

void connection_impl::serve(std::uint32_t handle, reader_state& r)
{
    while (!r.waiting.empty() && !r.records.empty()) {
        read_op op = std::move(r.waiting.front());
        r.waiting.pop_front();
        const auto kind = op.handler.index();
        if (kind == 3 || kind == 4) {
            // A batch: everything here, up to its limit, in one completion.
            const auto n = std::min(op.batch, r.records.size());
            std::vector<received_record> records;
            record_batch views;
            if (kind == 3) {
                records.reserve(n);
                for (std::size_t i = 0; i < n; ++i) {
                    records.push_back({std::string(r.front()), r.records.front().missed_before,
                                       sender_of(r.records.front().sender)});
                    r.pop_front();
                }
            } else {
                // Views: the bytes as they are held, lengths and all, in one copy.
                std::size_t wire = 0;
                for (std::size_t i = 0; i < n; ++i)
                    wire += 4 + r.records[i].size;
                views.reserve(n, wire);
                std::size_t at = views.append_wire({r.bytes.data() + r.begin, wire});
                std::uint32_t last = 0;
                std::shared_ptr<const record_sender> from;
                for (std::size_t i = 0; i < n; ++i) {
                    if (const auto s = r.records[i].sender; s != last || i == 0) {
                        last = s;
                        from = sender_of(s);
                    }
                    views.append_entry(at + 4, r.records[i].size, r.records[i].missed_before, from);
                    at += 4 + r.records[i].size;
                }
                r.pop_front(n, wire);
            }
            report(handle, r, static_cast<std::uint32_t>(n));
            if (op.timer)
                op.timer->cancel();
            std::visit([](auto& h) { asio::get_associated_cancellation_slot(h).clear(); },
                       op.handler);
            if (kind == 3)
                asio::post(executor_, asio::append(std::move(std::get<3>(op.handler)), error_code{},
                                                   std::move(records)));
            else
                asio::post(executor_, asio::append(std::move(std::get<4>(op.handler)), error_code{},
                                                   std::move(views)));
            continue;
        }
        const std::size_t size = r.records.front().size;
        const bool into_buffer = kind == 1;
        if (into_buffer && size > op.into.size()) {
            // Too small: the record stays, whole; the caller learns its size.
            complete_read(op, error::insufficient_buffer, {}, size);
            continue;
        }
        received_record record;
        if (into_buffer) {
            if (size)
                std::memcpy(op.into.data(), r.front().data(), size);
        } else {
            record = {std::string(r.front()), r.records.front().missed_before,
                      sender_of(r.records.front().sender)};
        }
        r.pop_front();
        report(handle, r, 1);
        complete_read(op, {}, std::move(record), size);
    }
}

void connection_impl::report(std::uint32_t handle, reader_state& r, std::uint32_t n)
{
    const auto from_before = std::min(n, r.stale); // held across a reconnect: not the new slot's
    r.stale -= from_before;
    if (n == from_before)
        return;
    r.unreported += n - from_before;
    if (!r.dirty) {
        r.dirty = true;
        dirty_readers_.push_back(handle);
    }
    // Reads are reported in batches: when a quarter of the window was read
    // (so the host refills it early), or ahead of any other frame this
    // connection sends — which keeps info() through this connection exact.
    // One frame per read would cost a syscall each way per record. A reader
    // that has read all it holds reports when it waits again (start_read), or
    // with what it sends first: a reply and its request's report then share
    // one socket write and one wake-up of the host.
    if (r.unreported >= std::max<std::uint32_t>(1, window_ / 4)) {
        reports_due_ = true;
        flush();
    } else if (r.records.empty() && !own_) {
        // On an executor: after the handlers that run now, if none sent it.
        asio::post(executor_, [self = shared_from_this()] {
            self->reports_due_ = true;
            self->flush();
        });
    }
}

void connection_impl::arm_wait(std::uint32_t handle, read_op& op, std::uint32_t timeout)
{
    if (op.timer)
        op.timer->cancel();
    op.timer.reset();
    if (timeout == 0) {
        finish(handle, op.id, error::sem_timeout);
        return;
    }
    if (timeout == mailslot_wait_forever)
        return;
    op.timer = std::make_unique<asio::steady_timer>(executor_, std::chrono::milliseconds(timeout));
    op.timer->async_wait(
        [weak = std::weak_ptr(shared_from_this()), handle, id = op.id](const error_code& ec) {
            if (auto strong = weak.lock(); strong && !ec)
                strong->finish(handle, id, error::sem_timeout);
        });
}

void connection_impl::finish(std::uint32_t handle, std::uint64_t op_id, error_code ec)
{
    auto it = readers_.find(handle);
    if (it == readers_.end())
        return;
    auto& waiting = it->second.waiting;
    for (auto op = waiting.begin(); op != waiting.end(); ++op)
        if (op->id == op_id) {
            read_op done = std::move(*op);
            waiting.erase(op);
            complete_read(done, ec, {}, 0);
            return;
        }
}

void connection_impl::complete_read(read_op& op, error_code ec, received_record record,
                                    std::size_t size)
{
    if (op.timer)
        op.timer->cancel();
    std::visit([](auto& h) { asio::get_associated_cancellation_slot(h).clear(); }, op.handler);
    switch (op.handler.index()) {
    case 0:
        asio::post(executor_,
                   asio::append(std::move(std::get<0>(op.handler)), ec, std::move(record.data)));
        break;
    case 1:
        asio::post(executor_, asio::append(std::move(std::get<1>(op.handler)), ec, size));
        break;
    case 2:
        asio::post(executor_,
                   asio::append(std::move(std::get<2>(op.handler)), ec, std::move(record)));
        break;
    case 3: { // a batch ends without records only on an error
        std::vector<received_record> none;
        if (!ec)
            none.push_back(std::move(record));
        asio::post(executor_,
                   asio::append(std::move(std::get<3>(op.handler)), ec, std::move(none)));
        break;
    }
    default: {
        record_batch none;
        if (!ec)
            none.append(record.data, record.missed_before);
        asio::post(executor_,
                   asio::append(std::move(std::get<4>(op.handler)), ec, std::move(none)));
    }
    }
}

void connection_impl::fail(error_code ec, std::string why)
{
    if (broken_)
        return;
    failure_ = why.empty() ? ec.message() : std::move(why);
    ++generation_; // handlers of this socket stand down from here on
    broken_ = ec == asio::error::operation_aborted ? error_code(error::broken_pipe) : ec;
    error_code ignored;
    socket_.close(ignored);
    write_active_ = false;
    pending_.clear();
    write_frames_.reset();
    post_frames_.reset();
    in_.clear();
    dirty_readers_.clear();
    reports_due_ = false;
    const error_code gone = error::broken_pipe;
    if (connecting_) {
        auto h = std::move(*connecting_);
        connecting_.reset();
        asio::post(executor_, asio::append(std::move(h), ec, reply{}));
    }
    for (auto& [id, h] : requests_)
        asio::post(executor_, asio::append(std::move(h), gone, reply{}));
    requests_.clear();
    // Sent, and no result came: the host may have delivered them or not.
    const error_code unknown = error::netname_deleted;
    for (auto& w : writes_)
        asio::post(executor_, asio::append(std::move(w.handler), unknown, std::uint32_t{0}));
    writes_.clear();
    unacked_bytes_ = 0;
    posts_unacked_ = 0;
    asked_for_results_ = false;
    for (auto& d : deferred_writes_)
        asio::post(executor_, asio::append(std::move(d.handler), gone, std::uint32_t{0}));
    deferred_writes_.clear();
    for (const auto& [request, read] : polls_) // their answers will not come
        finish(read.first, read.second, gone);
    polls_.clear();
    if (reconnecting()) {
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
            r.dirty = false;
            r.window_sent = false;
        }
        run_->connected = false;
        schedule_reconnect();
        return;
    }
    shut_down(gone);
}

void connection_impl::shut_down(error_code gone)
{
    // Reads waiting end; records this end holds stay readable (then reads
    // fail with `gone`): they were pushed before the connection went.
    for (auto& [handle, r] : readers_) {
        for (auto& op : r.waiting)
            complete_read(op, gone, {}, 0);
        r.waiting.clear();
        r.unreported = 0;
        r.dirty = false;
    }
    dirty_readers_.clear();
    run_timer_.cancel();
    if (run_ && run_->done) {
        auto done = std::move(*run_->done);
        run_->done.reset();
        asio::post(executor_,
                   asio::append(std::move(done), error_code(asio::error::operation_aborted)));
    }
}

// ---- keeping a connection up ------------------------------------------------------------------

void connection_impl::start_run(std::string address, std::string client_name, run_timing timing,
                                run_handler h)
{
    on_executor([self = shared_from_this(), address = std::move(address),
                 name = std::move(client_name), timing, h = std::move(h)]() mutable {
        self->run_.emplace(run_state{}); // (clang 14: no emplace() of a nested aggregate)
        self->run_->address = std::move(address);
        self->run_->client_name = std::move(name);
        self->run_->timing = timing;
        self->run_->backoff = timing.min_backoff;
        self->run_->done.emplace(std::move(h));
        if (!self->broken_ && self->max_frame_size_ != 0) {
            self->run_->connected = true; // connected already: keep it up from here
            self->last_heard_ = std::chrono::steady_clock::now();
            self->heartbeat();
        } else {
            self->attempt();
        }
    });
}

void connection_impl::attempt()
{
    socket_ = asio::local::stream_protocol::socket(executor_);
    broken_ = {};
    pending_.clear();
    write_frames_.reset();
    post_frames_.reset();
    in_.clear();
    connect_to(run_->address, run_->client_name, [self = shared_from_this()](error_code ec, reply) {
        if (!self->reconnecting())
            return;
        if (ec) {
            self->fail(ec); // and try again after the back-off
            return;
        }
        self->on_restored_connection();
    });
    // A host that accepts but never welcomes (stopped, wedged) is given up on.
    run_timer_.expires_after(3 * run_->timing.heartbeat);
    run_timer_.async_wait(
        [weak = weak_from_this(), generation = generation_](const error_code& ec) {
            auto self = weak.lock();
            if (self && !ec && generation == self->generation_ && self->reconnecting() &&
                !self->run_->connected)
                self->fail(error::broken_pipe, "no welcome in time");
        });
}

void connection_impl::on_restored_connection()
{
    run_->backoff = run_->timing.min_backoff;
    last_heard_ = std::chrono::steady_clock::now();
    restore();
    heartbeat();
}

void connection_impl::restore()
{
    const error_code gone = error::broken_pipe;
    for (auto it = restore_.begin(); it != restore_.end();) {
        const auto handle = it->first;
        const restorable& what = it->second;
        if (what.reader && !what.recreate) {
            // An attached duplicate cannot come back: its token was spent.
            if (auto r = readers_.find(handle); r != readers_.end()) {
                for (auto& op : r->second.waiting)
                    complete_read(op, gone, {}, 0);
                readers_.erase(r);
            }
            it = restore_.erase(it);
            continue;
        }
        const auto request = next_request_id();
        byte_buffer frame;
        if (what.reader)
            encode(frame, create_frame{request, handle, what.max_message_size, what.read_timeout,
                                       what.byte_budget, what.overflow, what.name});
        else
            encode(frame, open_frame{request, handle, open_rebind, what.name});
        requests_.emplace(request, [self = shared_from_this(), handle](error_code ec, reply) {
            auto known = self->restore_.find(handle);
            if (!ec) {
                if (known != self->restore_.end())
                    known->second.conflicts = 0;
                return;
            }
            // Taken: most likely by this slot's old incarnation, which the host
            // has not reaped yet (it was stalled). Try the whole restore again
            // later; after a few tries, the name belongs to someone else.
            constexpr int tries = 5;
            if (ec == error::already_exists && known != self->restore_.end() &&
                ++known->second.conflicts < tries) {
                self->fail(error::broken_pipe, "restore met the old incarnation");
                return;
            }
            // The name was taken meanwhile, or the host refuses it: this handle is lost.
            self->restore_.erase(handle);
            if (auto r = self->readers_.find(handle); r != self->readers_.end()) {
                for (auto& op : r->second.waiting)
                    self->complete_read(op, ec, {}, 0);
                self->readers_.erase(r);
            }
        });
        send(std::move(frame));
        for (const auto& pattern : what.patterns) {
            const auto subscribe = next_request_id();
            byte_buffer s;
            encode(s, subscribe_frame{subscribe, handle, pattern});
            requests_.emplace(subscribe, [](error_code, reply) {});
            send(std::move(s));
        }
        ++it;
    }
    // From here, reports may follow the frames that re-create their slots.
    run_->connected = true;
    // Readers that wait get their window back, now that their slots exist.
    for (auto& [handle, r] : readers_)
        if (!r.waiting.empty() && !r.dirty) {
            r.window_sent = true;
            r.dirty = true;
            dirty_readers_.push_back(handle);
        }
    reports_due_ = true;
    flush();
}

void connection_impl::heartbeat()
{
    run_timer_.expires_after(run_->timing.heartbeat);
    run_timer_.async_wait(
        [weak = weak_from_this(), generation = generation_](const error_code& ec) {
            auto self = weak.lock();
            if (!self || ec || generation != self->generation_ || !self->reconnecting())
                return;
            if (std::chrono::steady_clock::now() - self->last_heard_ >
                3 * self->run_->timing.heartbeat) {
                self->fail(error::broken_pipe, "the host stopped answering");
                return;
            }
            byte_buffer frame;
            encode(frame, ping_frame{++self->ping_nonce_});
            self->send(std::move(frame));
            self->heartbeat();
        });
}

void connection_impl::schedule_reconnect()
{
    run_timer_.expires_after(run_->backoff);
    run_->backoff = std::min(run_->backoff * 2, run_->timing.max_backoff);
    run_timer_.async_wait(
        [weak = weak_from_this(), generation = generation_](const error_code& ec) {
            auto self = weak.lock();
            if (self && !ec && generation == self->generation_ && self->reconnecting())
                self->attempt();
        });
}

void connection_impl::remember(std::uint32_t handle, restorable what)
{
    on_executor([self = shared_from_this(), handle, what = std::move(what)]() mutable {
        self->restore_[handle] = std::move(what);
    });
}

void connection_impl::remember_pattern(std::uint32_t handle, std::string pattern, bool subscribed)
{
    on_executor([self = shared_from_this(), handle, pattern = std::move(pattern), subscribed] {
        auto it = self->restore_.find(handle);
        if (it == self->restore_.end())
            return;
        auto& list = it->second.patterns;
        if (subscribed)
            list.push_back(pattern);
        else
            std::erase(list, pattern);
    });
}

void connection_impl::remember_timeout(std::uint32_t handle, std::uint32_t read_timeout)
{
    on_executor([self = shared_from_this(), handle, read_timeout] {
        if (auto it = self->restore_.find(handle); it != self->restore_.end())
            it->second.read_timeout = read_timeout;
    });
}

void connection_impl::forget(std::uint32_t handle)
{
    on_executor([self = shared_from_this(), handle] { self->restore_.erase(handle); });
}

} // namespace detail

// ---- connection -----------------------------------------------------------------------------

connection::connection(connection_options options)
    : impl_(std::make_shared<detail::connection_impl>(std::nullopt, options.window,
                                                      options.plugin_token)),
      options_(std::move(options))
{
}

connection::connection(boost::asio::any_io_executor executor, connection_options options)
    : impl_(std::make_shared<detail::connection_impl>(executor, options.window,
                                                      options.plugin_token)),
      options_(std::move(options))
{
}

connection::~connection()
{
    if (impl_)
        impl_->close();
}

void connection::connect(const std::string& address, std::error_code& ec)
{
    impl_->wait<detail::reply>(
        [&](auto h) { impl_->start_connect(address, options_.client_name, std::move(h)); }, ec);
}

void connection::connect(const std::string& address)
{
    std::error_code ec;
    connect(address, ec);
    // The host's or the check's words say more than the code alone.
    const auto why = last_failure();
    throw_if(ec, why.empty() ? "slotbus::connection::connect" : why.c_str());
}

void connection::connect()
{
    connect(default_address());
}

void connection::run()
{
    if (auto* io = impl_->owned_context()) {
        io->restart();
        io->run();
    }
}

void connection::run_for(std::chrono::milliseconds limit)
{
    if (auto* io = impl_->owned_context()) {
        io->restart();
        io->run_for(limit);
    }
}

void connection::stop()
{
    if (auto* io = impl_->owned_context())
        io->stop();
}

void connection::close()
{
    impl_->close();
}

boost::asio::any_io_executor connection::get_executor() const
{
    return impl_->get_executor();
}

std::string connection::last_failure() const
{
    return impl_->last_failure();
}

std::uint32_t connection::max_record_size() const noexcept
{
    return impl_->max_record_size();
}

const std::string& connection::host_name() const noexcept
{
    return impl_->host_name();
}

const std::string& connection::plugin_name() const noexcept
{
    return impl_->plugin_name();
}

std::string plugin_token_from_environment()
{
    // Read once and taken out of the environment, so the plugin's own
    // children (a shell, a helper) do not inherit its identity.
    static const std::string token = [] {
        const char* value = std::getenv("SLOTBUS_TOKEN");
        std::string read = value ? value : "";
        ::unsetenv("SLOTBUS_TOKEN");
        return read;
    }();
    return token;
}

} // namespace slotbus
