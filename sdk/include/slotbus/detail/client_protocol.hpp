// Not API: the protocol logic of one client connection, with no I/O in it
// (Boost.Redis's sans-I/O model). Calls and decoded frames go in; bytes to
// send (take_output) and what the driver must do (a frame_action, the
// lost_work of a failure) come out. No socket, timer or executor is inside:
// the socket driver (connection_impl) does the I/O around it, and the unit
// tests drive it step by step.
//
// One thread: it assumes the thread of the connection's executor (or of the
// owned context), like the driver that holds it. Only next_request_id() may
// be called from any thread.
#pragma once

#include "slotbus/detail/lanes.hpp"
#include "slotbus/detail/write_handler.hpp"
#include "slotbus/export.hpp"
#include "slotbus/protocol.hpp"
#include "slotbus/slot_info.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace slotbus::detail {

using boost::system::error_code;

/// What a request comes back with.
struct SLOTBUS_API reply {
    std::uint32_t handle = 0;
    std::uint32_t value_a = 0;
    std::uint32_t value_b = 0;
    std::string text;
    slot_info info;
};

using reply_handler = boost::asio::any_completion_handler<void(error_code, reply)>;

/// When the host answers a write: with the batch of frames it came in, or —
/// for a write nobody waits for — with the next thing it sends this
/// connection (a `post` frame: no frame and no wake-up of its own).
enum class results { prompt, when_convenient };

/// What a reconnect must restore for one handle.
struct SLOTBUS_API restorable {
    bool reader = false;
    std::string name; ///< the full name
    std::uint32_t max_message_size = 0, read_timeout = 0, byte_budget = 0, overflow = 0;
    std::vector<std::string> patterns; ///< subscriptions of a reader
    bool recreate = true;              ///< false for an attached duplicate: its token is spent
    int conflicts = 0;                 ///< reconnects in a row that found the name taken
    std::uint32_t open_flags = 0;      ///< a writer's: open_publish for a publisher's
};

/// What this end holds of one reader handle: the records pushed by the host
/// and not read yet, and what it owes the host in read reports.
struct SLOTBUS_API reader_state {
    std::uint32_t read_timeout = 0;
    // Records pushed by the host, not read yet: their sizes and gaps here,
    // their bytes in `bytes` from `begin`, as the host's record lists had
    // them (a u32 length before each; no allocation per record).
    // A record the host pushed by descriptor stays in its lane (`lane`
    // points at its bytes there) and takes no bytes in `bytes`.
    struct pushed {
        std::uint32_t size;
        std::uint32_t missed_before;
        std::uint32_t sender;               // into the senders; 0: none
        const std::uint8_t* lane = nullptr; // in a lane mapping (held by `lanes`)
    };
    std::deque<pushed> records;
    std::string bytes;
    std::size_t begin = 0;
    // The lanes records here point into; kept mapped until none does.
    std::vector<std::shared_ptr<const lane_mapping>> lanes;
    [[nodiscard]] std::string_view front() const noexcept
    {
        const auto& r = records.front();
        if (r.lane)
            return {reinterpret_cast<const char*>(r.lane), r.size};
        return {bytes.data() + begin + 4, r.size};
    }
    /// The bytes (lengths included) the first n records take in `bytes`.
    [[nodiscard]] std::size_t wire(std::size_t n) const noexcept;
    /// Drops the first n records, whose bytes (lengths included) are `wire`.
    void pop_front(std::size_t n, std::size_t wire);
    void pop_front() { pop_front(1, records.front().lane ? 0 : 4 + records.front().size); }
    /// Copies the records held in lanes into `bytes`: the host may let
    /// their writers reuse that space (the connection is gone).
    void copy_out_of_lanes();
    void clear() noexcept
    {
        records.clear();
        bytes.clear();
        begin = 0;
        lanes.clear();
    }
    std::uint32_t gap = 0;              // told of drops; goes with the next record
    std::uint32_t unreported = 0;       // read since the last read_report
    std::uint64_t unreported_bytes = 0; // and their bytes
    std::uint32_t stale = 0;            // at the front, held from before a reconnect: not reported
    bool dirty = false;                 // a read_report is owed
    bool window_sent = false;
    std::uint32_t window_told = 0; // the window the host last heard of
    error_code revoked;            // the host closed it (a policy reload): reads fail with this
};

/// What the driver must do after a frame, beyond what the protocol did
/// itself (write acknowledgements complete their writes in place).
struct SLOTBUS_API frame_action {
    enum class kind {
        none,
        welcomed,        ///< the connection is up: complete the connect
        answered,        ///< post `request` with ec and `answer`
        records,         ///< records came for `handle`: serve its waiting reads
        poll_answered,   ///< the poll of read `read_op` of `handle` is answered: arm its wait
        timeout_changed, ///< `handle`'s reads wait by its new read_timeout
        revoked,         ///< `handle`'s waiting reads end with ec; it stays, revoked
        reader_lost,     ///< `handle` is gone (a restore refused): its waiting reads end with ec
        lanes_changed, ///< a writer lane opened, freed room or closed: retry writes waiting for one
        fail,          ///< the connection must end: ec, why
    };
    kind what = kind::none;
    std::uint32_t handle = 0;
    std::uint64_t read_op = 0;
    error_code ec;
    std::string why;
    // Optional, so it is emplaced: Boost 1.81's any_completion_handler must
    // never be move-assigned (it recurses).
    std::optional<reply_handler> request;
    reply answer;
};

/// What a failed connection leaves to complete, in this order.
struct SLOTBUS_API lost_work {
    std::vector<reply_handler> requests; ///< with broken_pipe
    std::vector<write_handler> sent;     ///< outcome unknown: netname_deleted
    std::vector<write_handler> queued;   ///< never sent: broken_pipe
    /// Reads whose poll will not be answered: (handle, read op), with broken_pipe.
    std::vector<std::pair<std::uint32_t, std::uint64_t>> polls;
    /// Handles whose restore died with the connection: their reads end with the error.
    std::vector<std::pair<std::uint32_t, error_code>> lost_readers;
};

class SLOTBUS_API client_protocol {
public:
    /// At most this many unacknowledged write bytes on the wire, well under
    /// the host's --max-held: so the host can always go on reading this
    /// connection's read reports while a write of it waits for room. Every
    /// write past it waits in the client, in order (bounded by the caller:
    /// a synchronous write waits for its own result, an async one holds its
    /// handler, as any Asio operation under way does).
    static constexpr std::size_t max_unacked_bytes = 4u << 20;

    /// `window`: records a reader lets the host push ahead of its reads.
    /// 0: none; a reader takes one record at a time, only while a read of
    /// it waits, so a queue shared with duplicates goes to whoever reads
    /// (the Windows API's handles). `read_waits` tells whether a read of a
    /// handle waits now; it is asked in that mode only.
    explicit client_protocol(std::uint32_t window,
                             std::function<bool(std::uint32_t)> read_waits = {})
        : window_(window), read_waits_(std::move(read_waits))
    {
    }
    client_protocol(const client_protocol&) = delete;
    client_protocol& operator=(const client_protocol&) = delete;
    ~client_protocol() { close_fds(); }

    // ---- the session ----------------------------------------------------------------------

    /// A connection is open: says hello; a welcome is awaited from here.
    void hello(std::uint32_t pid, std::string_view client_name, std::string_view token,
               std::uint32_t features = 0);
    /// An fd that came with the host's bytes (SCM_RIGHTS): the next
    /// lane_open frame's. Owned from here.
    void take_fd(int fd);
    /// Takes one frame from the host.
    [[nodiscard]] frame_action on_frame(const frame_view& frame);
    /// The connection is gone. Everything waiting on it comes back to be
    /// failed; with `reconnect`, readers keep what they hold (stale: never
    /// reported to the next connection, whose first record tells of a gap)
    /// and reports wait until restore().
    [[nodiscard]] lost_work fail(bool reconnect);
    /// The connection is gone for good: no report is owed any more.
    void forget_reports() noexcept;
    /// Reports wait (between connections, until a reconnect has re-created
    /// the slots: the host must see a slot before any report on it).
    void hold_reports(bool held) noexcept { hold_reports_ = held; }
    [[nodiscard]] bool reports_held() const noexcept { return hold_reports_; }

    // ---- output ---------------------------------------------------------------------------

    /// Hands what is to be sent to `into` (cleared first), reports owed
    /// included; false when there is nothing. `into` keeps its capacity for
    /// the next time, and so does the buffer it swaps with.
    bool take_output(byte_buffer& into);
    /// What the last connection had not sent is not for the next.
    void reset_output() noexcept;
    [[nodiscard]] bool has_output() const noexcept { return !pending_.empty(); }
    /// A frame to send (after the reports owed so far).
    void send(byte_buffer&& frame);
    void ping();

    // ---- writes ---------------------------------------------------------------------------

    /// True when a write of `frame_size` bytes at most may go out now: the
    /// window has room and no write waits before it.
    [[nodiscard]] bool may_write_now(std::size_t frame_size) const noexcept
    {
        return deferred_writes_.empty() &&
               (unacked_bytes_ == 0 || unacked_bytes_ + frame_size <= max_unacked_bytes);
    }
    /// The hot path, when may_write_now(frame_size): the records go straight
    /// into the output, joining the write frame before them when they can.
    void write(std::uint32_t handle, std::span<const boost::asio::const_buffer> records,
               write_handler&& h, results pace, std::size_t frame_size);
    /// A lost frame for `handle`: after the writes before it (those queued
    /// past the window too), before the ones after.
    void tell_lost(std::uint32_t handle, std::uint32_t count);
    /// A write frame built elsewhere (off the connection's thread): sent, or
    /// queued past the window.
    void write_frame(byte_buffer&& frame, write_handler&& h, std::uint32_t records, results pace);
    [[nodiscard]] std::size_t unacked_bytes() const noexcept { return unacked_bytes_; }
    [[nodiscard]] std::size_t writes_on_the_wire() const noexcept { return writes_.size(); }
    [[nodiscard]] std::size_t writes_queued() const noexcept { return deferred_writes_.size(); }

    // ---- requests -------------------------------------------------------------------------

    std::uint32_t next_request_id() noexcept { return next_request_++; }
    /// Sends a request frame whose answer completes `h`.
    void request(byte_buffer&& frame, std::uint32_t request_id, reply_handler&& h);
    [[nodiscard]] std::size_t requests_waiting() const noexcept { return requests_.size(); }

    // ---- reads ----------------------------------------------------------------------------

    [[nodiscard]] reader_state* find_reader(std::uint32_t handle) noexcept;
    /// A reader handle the host confirmed, with the slot's timeout.
    void add_reader(std::uint32_t handle, std::uint32_t read_timeout);
    /// Forgets a reader handle; what it read and did not report yet is
    /// reported ahead of the next frame. False when it was not known.
    bool drop_reader(std::uint32_t handle);
    /// A read starts: the host pushes nothing ahead until a reader first
    /// reads, so a handle that never reads holds back no records from its
    /// duplicates.
    void first_read(std::uint32_t handle, reader_state& r);
    /// A read ended without a record (a timeout, a cancellation): with a
    /// window of 0, the host is told to hold what comes until the next read.
    void read_ended(std::uint32_t handle);
    /// Asks the host to push what it has for read `read_op` (timeout 0).
    void poll(std::uint32_t handle, std::uint64_t read_op);
    enum class report_due {
        later,     ///< with the next frame this end sends
        now,       ///< flush now (a quarter of the window was read)
        when_idle, ///< the reader read all it holds: flush after the handlers that run now
    };
    /// The reader read n records of `bytes` in all (popped from `r` already):
    /// counted for the next read_report.
    [[nodiscard]] report_due consumed(std::uint32_t handle, reader_state& r, std::uint32_t n,
                                      std::uint64_t bytes);
    /// Read bytes that make a read_report due at once, whatever the window:
    /// large records pin a writer's lane (8 MiB by default) until reported,
    /// and a quarter of a 1024-record window of 64 KiB records is 16 MiB.
    static constexpr std::uint64_t report_bytes = std::uint64_t{256} << 10;
    /// Reports must go out with the next take_output().
    void reports_due() noexcept { reports_due_ = true; }
    [[nodiscard]] std::shared_ptr<const record_sender> sender_of(std::uint32_t id) const;

    // ---- what a reconnect restores --------------------------------------------------------

    void remember(std::uint32_t handle, restorable what);
    void remember_pattern(std::uint32_t handle, std::string pattern, bool subscribed);
    void remember_timeout(std::uint32_t handle, std::uint32_t read_timeout);
    void forget(std::uint32_t handle);
    [[nodiscard]] const restorable* restoring(std::uint32_t handle) const;
    /// A reconnect is welcomed: re-creates the slots, re-opens the writers
    /// and re-subscribes, in handle order (a slot before its
    /// subscriptions), then lets reports go and gives readers for which
    /// `waits` is true their window back. Returns the reader handles that
    /// cannot come back (attached duplicates: their tokens were spent);
    /// their waiting reads end with broken_pipe.
    std::vector<std::uint32_t> restore(const std::function<bool(std::uint32_t)>& waits);

    // ---- what the welcome said ------------------------------------------------------------

    [[nodiscard]] std::uint32_t max_record_size() const noexcept { return max_record_size_; }
    /// The writer lanes; thread-safe (written into from any thread).
    [[nodiscard]] lane_writers& lanes() noexcept { return lanes_; }
    /// Reader lanes mapped now (for tests).
    [[nodiscard]] std::size_t reader_lanes() const noexcept { return reader_lanes_.size(); }
    /// Until the welcome says otherwise, a frame is bounded by a sane default.
    [[nodiscard]] std::size_t max_frame() const noexcept
    {
        return max_frame_size_ ? max_frame_size_ : (1u << 20) + 64;
    }
    [[nodiscard]] bool welcomed() const noexcept { return max_frame_size_ != 0; }
    [[nodiscard]] const std::string& host_name() const noexcept { return host_name_; }
    [[nodiscard]] const std::string& plugin_name() const noexcept { return plugin_name_; }

private:
    frame_action answer(std::uint32_t request, std::uint32_t error, reply r);
    frame_action restore_answered(std::uint32_t handle, error_code ec);
    frame_action on_write_acks(const frame_view& frame);
    frame_action on_records(const frame_view& frame);
    frame_action on_records_lane(const frame_view& frame);
    /// The sender an origin id of a records frame names (0: none); false
    /// when the host never announced it.
    bool sender_for(std::uint32_t origin, std::uint32_t& sender) const;
    frame_action on_lane_open(const frame_view& frame);
    frame_action on_lane_close(const frame_view& frame);
    void send_lane_closed(std::uint32_t lane);
    void close_fds() noexcept;
    frame_action on_revoked(std::uint32_t handle, error_code ec, std::string_view pattern);
    void emit_reports();
    void send_write(byte_buffer&& frame, write_handler&& h, std::uint32_t records, results pace);
    /// Forgets the senders no held record refers to and no origin id names.
    void prune_senders();

    /// The window to tell the host for a reader now.
    [[nodiscard]] std::uint32_t window_for(std::uint32_t handle) const;

    std::uint32_t window_;
    std::function<bool(std::uint32_t)> read_waits_;
    bool awaiting_welcome_ = false;
    bool hold_reports_ = false;

    byte_buffer pending_;                                 // to send, in order
    record_list_builder write_frames_{frame_type::write}; // over pending_
    record_list_builder post_frames_{frame_type::post};   // over pending_ too
    std::vector<std::uint32_t> dirty_readers_;
    // Reports must go out now (a quarter window read, a reader about to
    // wait); otherwise they ride along with the next frame this end sends.
    bool reports_due_ = false;
    std::uint32_t ping_nonce_ = 0;

    // A request is the caller's, a restore's (its answer decides the
    // handle's fate) or a re-subscription's (its answer is not waited for).
    struct waiting_request {
        enum class kind { caller, restore, resubscribe } what = kind::caller;
        std::uint32_t handle = 0; // a restore's
        reply_handler handler;    // a caller's
    };
    std::atomic<std::uint32_t> next_request_{1};
    std::unordered_map<std::uint32_t, waiting_request> requests_;
    std::unordered_map<std::uint32_t, std::pair<std::uint32_t, std::uint64_t>>
        polls_; // request -> (handle, read op)

    struct unacked_write { // one write call: a record, or a batch of them
        write_handler handler;
        std::size_t frame_size;
        std::uint32_t records; // not acknowledged yet
        results pace;
        std::uint32_t error = 0;     // the first of the batch
        std::uint32_t delivered = 0; // summed over the batch
    };
    std::deque<unacked_write> writes_; // awaiting acknowledgement, in send order
    std::size_t unacked_bytes_ = 0;
    // Posted writes not acknowledged yet: when they hold the window full, a
    // ping fetches their results (the host answers nothing before them).
    std::uint32_t posts_unacked_ = 0;
    bool asked_for_results_ = false;
    struct deferred_write {
        byte_buffer frame;
        write_handler handler;
        std::uint32_t records; // 0: a lost frame, which is no write (no result comes)
        results pace;
    };
    std::deque<deferred_write> deferred_writes_;           // past the window, in order
    std::vector<std::pair<write_handler, ack_run>> acked_; // completed by one write_acks frame

    std::unordered_map<std::uint32_t, reader_state> readers_;
    // Senders the host told of: its origin ids (this connection's) to ours,
    // which outlive a reconnect while records of theirs are held.
    std::unordered_map<std::uint32_t, std::uint32_t> origin_ids_;
    std::unordered_map<std::uint32_t, std::shared_ptr<const record_sender>> senders_;
    std::uint32_t next_sender_ = 1;

    std::map<std::uint32_t, restorable> restore_;

    lane_writers lanes_;
    std::deque<int> fds_; // received, not yet taken by their lane_open
    std::unordered_map<std::uint32_t, std::shared_ptr<const lane_mapping>> reader_lanes_;

    std::uint32_t max_record_size_ = 0;
    std::uint32_t max_frame_size_ = 0;
    std::string host_name_;
    std::string plugin_name_;
};

} // namespace slotbus::detail
