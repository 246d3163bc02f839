// Not API: the protocol state of one connection to the host. Lives on one
// executor; every member function but the start_* entry points runs there.
#pragma once

#include "slotbus/detail/write_handler.hpp"
#include "slotbus/protocol.hpp"
#include "slotbus/slot_info.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <variant>

namespace slotbus::detail {

namespace asio = boost::asio;
using boost::system::error_code;

/// What a request comes back with.
struct reply {
    std::uint32_t handle = 0;
    std::uint32_t value_a = 0;
    std::uint32_t value_b = 0;
    std::string text;
    slot_info info;
};

using reply_handler = asio::any_completion_handler<void(error_code, reply)>;

/// When the host answers a write: with the batch of frames it came in, or —
/// for a write nobody waits for — with the next thing it sends this
/// connection (a `post` frame: no frame and no wake-up of its own).
enum class results { prompt, when_convenient };
using run_handler = asio::any_completion_handler<void(error_code)>;

/// How a running connection keeps itself alive.
struct run_timing {
    std::chrono::milliseconds heartbeat{1000};   ///< a ping this often; 3 missed: reconnect
    std::chrono::milliseconds min_backoff{50};   ///< first wait before reconnecting
    std::chrono::milliseconds max_backoff{2000}; ///< the waits double up to this
};

/// What a reconnect must restore for one handle.
struct restorable {
    bool reader = false;
    std::string name; ///< the full name
    std::uint32_t max_message_size = 0, read_timeout = 0, byte_budget = 0, overflow = 0;
    std::vector<std::string> patterns; ///< subscriptions of a reader
    bool recreate = true;              ///< false for an attached duplicate: its token is spent
    int conflicts = 0;                 ///< reconnects in a row that found the name taken
};
using read_string_handler = asio::any_completion_handler<void(error_code, std::string)>;
using read_buffer_handler = asio::any_completion_handler<void(error_code, std::size_t)>;
using read_record_handler = asio::any_completion_handler<void(error_code, received_record)>;
using read_batch_handler =
    asio::any_completion_handler<void(error_code, std::vector<received_record>)>;
using read_records_handler = asio::any_completion_handler<void(error_code, record_batch)>;
template <class Slot> using open_handler = asio::any_completion_handler<void(error_code, Slot)>;
/// A read completes with the record's bytes, its size (read into a buffer), or both and its gap.
using read_handler = std::variant<read_string_handler, read_buffer_handler, read_record_handler,
                                  read_batch_handler, read_records_handler>;

class connection_impl : public std::enable_shared_from_this<connection_impl> {
public:
    /// With no executor, the connection owns an io_context that its
    /// synchronous calls run on the calling thread.
    connection_impl(std::optional<asio::any_io_executor> executor, std::uint32_t window,
                    std::string token);
    ~connection_impl();

    [[nodiscard]] asio::any_io_executor get_executor() const { return executor_; }
    [[nodiscard]] asio::io_context* owned_context() const noexcept { return own_.get(); }

    // Entry points: callable from any thread; they dispatch to the executor.
    void start_connect(std::string address, std::string client_name, reply_handler h);
    void start_request(byte_buffer frame, std::uint32_t request_id, reply_handler h);
    /// Writes records to a writer handle, each a write of its own, with one
    /// completion for all (the first error, the deliveries summed); copies
    /// them before it returns. At least one record.
    void start_write(std::uint32_t handle, std::span<const asio::const_buffer> records,
                     write_handler h, results pace = results::prompt);
    void start_read(std::uint32_t handle, read_handler h, asio::mutable_buffer into,
                    std::size_t batch = 1);
    /// Ends the handle's waiting reads with operation_aborted; the slot stays.
    void cancel_reads(std::uint32_t handle);
    /// Forgets a reader handle locally (its waiting reads end with operation_aborted);
    /// what it read and did not report yet is reported ahead of the next frame.
    void drop_reader(std::uint32_t handle);
    /// Registers a reader handle the host confirmed, with the slot's timeout.
    void add_reader(std::uint32_t handle, std::uint32_t read_timeout);
    void close();

    /// Keeps the connection up: connects (unless connected), then on every
    /// failure reconnects with back-off, re-creates the slots, writer handles
    /// and subscriptions of restore_, and watches the host with heartbeats.
    /// Completes with operation_aborted when the connection is closed.
    void start_run(std::string address, std::string client_name, run_timing timing, run_handler h);

    // The registry of what a reconnect restores, kept by the slot classes.
    void remember(std::uint32_t handle, restorable what);
    void remember_pattern(std::uint32_t handle, std::string pattern, bool subscribed);
    void remember_timeout(std::uint32_t handle, std::uint32_t read_timeout);
    void forget(std::uint32_t handle);

    std::uint32_t next_request_id() noexcept { return next_request_++; }
    /// Handles are numbered by the client, so they survive a reconnect.
    std::uint32_t next_handle() noexcept { return next_handle_++; }
    [[nodiscard]] std::uint32_t max_record_size() const noexcept { return max_record_size_; }
    [[nodiscard]] const std::string& host_name() const noexcept { return host_name_; }
    [[nodiscard]] const std::string& plugin_name() const noexcept { return plugin_name_; }
    [[nodiscard]] const std::string& last_failure() const noexcept { return failure_; }

    /// Runs a started operation to completion: on the owned io_context when
    /// there is one, else by waiting for the executor's thread.
    template <class T, class Start> T wait(Start&& start, std::error_code& ec);

private:
    struct read_op {
        std::uint64_t id = 0;
        read_handler handler;
        asio::mutable_buffer into;
        std::unique_ptr<asio::steady_timer> timer;
        std::size_t batch = 1; ///< a batch read takes up to this many records at once
    };
    struct reader_state {
        std::uint32_t read_timeout = 0;
        // Records pushed by the host, not read yet: their sizes and gaps here,
        // their bytes in `bytes` from `begin`, as the host's record lists had
        // them (a u32 length before each; no allocation per record).
        struct pushed {
            std::uint32_t size;
            std::uint32_t missed_before;
            std::uint32_t sender; // into senders_; 0: none
        };
        std::deque<pushed> records;
        std::string bytes;
        std::size_t begin = 0;
        [[nodiscard]] std::string_view front() const noexcept
        {
            return {bytes.data() + begin + 4, records.front().size};
        }
        /// Drops the first n records, whose bytes (lengths included) are `wire`.
        void pop_front(std::size_t n, std::size_t wire);
        void pop_front() { pop_front(1, 4 + records.front().size); }
        void clear() noexcept
        {
            records.clear();
            bytes.clear();
            begin = 0;
        }
        std::uint32_t gap = 0; // told of drops; goes with the next record
        // A list: erasing from a deque move-assigns, and Boost 1.81's
        // any_completion_handler must never be move-assigned (it recurses).
        std::list<read_op> waiting;
        std::uint32_t unreported = 0; // read since the last read_report
        std::uint32_t stale = 0;      // at the front, held from before a reconnect: not reported
        bool dirty = false;           // a read_report is owed
        bool window_sent = false;
        error_code revoked; // the host closed it (a policy reload): reads fail with this
    };

    /// Runs an entry point's work where its state lives: at once on an owned
    /// context (used by one thread at a time), else dispatched to the executor.
    template <class F> void on_executor(F&& f)
    {
        if (own_)
            f();
        else
            asio::dispatch(executor_, std::forward<F>(f));
    }
    void connect_to(const std::string& address, const std::string& client_name, reply_handler h);
    void read_loop();
    [[nodiscard]] std::size_t max_frame() const noexcept;
    void emit_reports();
    // The run loop: see start_run.
    void attempt();
    void on_restored_connection();
    void restore();
    void heartbeat();
    void schedule_reconnect();
    [[nodiscard]] bool reconnecting() const noexcept { return run_ && !run_->stopping; }
    /// What a call made now fails with, or nothing: broken_pipe between
    /// connections (and until a reconnect has restored every handle) or
    /// after a failure — never the socket's own errno — or the host's error
    /// from its fatal frame.
    [[nodiscard]] error_code call_error() const noexcept;
    void on_frame(const frame_view& frame);
    /// Completes the request an answer frame is for; false when none waits for it.
    bool answer(std::uint32_t request, std::uint32_t error, reply r);
    void fail(error_code ec, std::string why = {});
    /// The host closed a handle (or one subscription of it) a new policy no longer allows.
    void on_revoked(std::uint32_t handle, error_code ec, std::string_view pattern);
    /// For good: every waiting read and the run end.
    void shut_down(error_code gone);
    void flush();
    void send(byte_buffer&& frame);
    void send_write(byte_buffer&& frame, write_handler h, std::uint32_t records, results pace);
    [[nodiscard]] bool on_this_thread() const;
    void serve(std::uint32_t handle, reader_state& r);
    void complete_read(read_op& op, error_code ec, received_record record, std::size_t size);
    /// The reader read n records: counted for the next read_report.
    void report(std::uint32_t handle, reader_state& r, std::uint32_t n);
    /// Makes a waiting read wait by `timeout`, from now: 0 ends it with
    /// sem_timeout at once, mailslot_wait_forever waits without a timer.
    void arm_wait(std::uint32_t handle, read_op& op, std::uint32_t timeout);
    /// Ends one waiting read with ec (a timeout, a cancellation), if it still waits.
    void finish(std::uint32_t handle, std::uint64_t op_id, error_code ec);

    std::unique_ptr<asio::io_context> own_;
    asio::any_io_executor executor_;
    asio::local::stream_protocol::socket socket_;
    std::uint32_t window_;
    std::string token_; // a plugin's token, sent in every hello

    frame_buffer in_;
    byte_buffer pending_, writing_;
    record_list_builder write_frames_{frame_type::write}; // over pending_
    record_list_builder post_frames_{frame_type::post};   // over pending_ too
    bool write_active_ = false;
    std::vector<std::uint32_t> dirty_readers_;
    // Reports must go out now (a quarter window read, a reader about to
    // wait); otherwise they ride along with the next frame this end sends.
    bool reports_due_ = false;

    std::atomic<std::uint32_t> next_request_{1};
    std::atomic<std::uint32_t> next_handle_{1};
    // Bumped by every failure: handlers of an older socket see it and stand down.
    std::uint64_t generation_ = 0;
    std::map<std::uint32_t, restorable> restore_;
    struct run_state {
        std::string address, client_name;
        run_timing timing;
        std::chrono::milliseconds backoff{};
        std::optional<run_handler> done;
        bool stopping = false;
        bool connected = false;
    };
    std::optional<run_state> run_;
    asio::steady_timer run_timer_; // back-off, connect deadline, heartbeat
    std::chrono::steady_clock::time_point last_heard_;
    std::uint32_t ping_nonce_ = 0;
    std::uint64_t next_read_op_ = 1;
    std::unordered_map<std::uint32_t, reply_handler> requests_;
    std::unordered_map<std::uint32_t, std::pair<std::uint32_t, std::uint64_t>>
        polls_;            // request -> (handle, op)
    struct unacked_write { // one start_write: a record, or a batch of them
        write_handler handler;
        std::size_t frame_size;
        std::uint32_t records; // not acknowledged yet
        results pace;
        std::uint32_t error = 0;     // the first of the batch
        std::uint32_t delivered = 0; // summed over the batch
    };
    std::deque<unacked_write> writes_; // awaiting acknowledgement, in send order
    // At most this many unacknowledged write bytes on the wire, well under
    // the host's --max-held: so the host can always go on reading this
    // connection's read reports while a write of it waits for room.
    static constexpr std::size_t max_unacked_bytes = 4u << 20;
    std::size_t unacked_bytes_ = 0;
    // Posted writes not acknowledged yet: when they hold the window full, a
    // ping fetches their results (the host answers nothing before them).
    std::uint32_t posts_unacked_ = 0;
    bool asked_for_results_ = false;
    struct deferred_write {
        byte_buffer frame;
        write_handler handler;
        std::uint32_t records;
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
    /// Forgets the senders no held record refers to and no origin id names.
    void prune_senders();
    [[nodiscard]] std::shared_ptr<const record_sender> sender_of(std::uint32_t id) const;
    std::optional<reply_handler> connecting_;

    std::uint32_t max_record_size_ = 0;
    std::uint32_t max_frame_size_ = 0;
    std::string host_name_;
    std::string plugin_name_;
    error_code broken_;   // set once the connection has failed
    std::string failure_; // why it last failed, for people
};

template <class T, class Start> T connection_impl::wait(Start&& start, std::error_code& ec)
{
    std::optional<std::pair<error_code, T>> out;
    if (own_) {
        start([&out](error_code e, T v) { out.emplace(e, std::move(v)); });
        // A stop() asked for before or during this call (a signal handler
        // run by it) must still stop the run() this call may be inside.
        bool stop_again = false;
        while (!out) {
            if (own_->stopped()) {
                own_->restart();
                stop_again = true;
            }
            own_->run_one();
        }
        // Let finished writes hand over what queued behind them (read reports).
        own_->poll();
        if (stop_again || own_->stopped())
            own_->stop();
    } else {
        std::promise<std::pair<error_code, T>> promise;
        auto future = promise.get_future();
        start([&promise](error_code e, T v) { promise.set_value({e, std::move(v)}); });
        out.emplace(future.get());
    }
    ec = out->first;
    return std::move(out->second);
}

} // namespace slotbus::detail
