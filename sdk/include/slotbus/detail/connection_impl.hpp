// Not API: the socket driver of one connection to the host: it connects
// (over the stream the address names), runs the read loop and the write
// flush, the heartbeat and the reconnect back-off, and the reads' timers,
// and feeds client_protocol, which holds the protocol logic (write window,
// acknowledgements, requests, read reports, the restore list) without I/O.
// Lives on one executor; every member function but the start_* entry points
// runs there.
#pragma once

#include "slotbus/address.hpp"
#include "slotbus/detail/client_protocol.hpp"
#include "slotbus/detail/write_handler.hpp"
#include "slotbus/export.hpp"
#include "slotbus/protocol.hpp"
#include "slotbus/slot_info.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <variant>

namespace boost::asio::ssl {
class context;
} // namespace boost::asio::ssl

namespace slotbus::detail {

class byte_stream; // byte_stream.hpp: kept out of plugins' includes (OpenSSL)

namespace asio = boost::asio;
using boost::system::error_code;

using run_handler = asio::any_completion_handler<void(error_code)>;

/// How a running connection keeps itself alive.
struct SLOTBUS_API run_timing {
    std::chrono::milliseconds heartbeat{1000};   ///< a ping this often; 3 missed: reconnect
    std::chrono::milliseconds min_backoff{50};   ///< first wait before reconnecting
    std::chrono::milliseconds max_backoff{2000}; ///< the waits double up to this
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

class SLOTBUS_API connection_impl : public std::enable_shared_from_this<connection_impl> {
public:
    /// With no executor, the connection owns an io_context that its
    /// synchronous calls run on the calling thread.
    connection_impl(std::optional<asio::any_io_executor> executor, std::uint32_t window,
                    std::string token, tls_options tls);
    ~connection_impl();

    [[nodiscard]] asio::any_io_executor get_executor() const { return executor_; }
    [[nodiscard]] asio::io_context* owned_context() const noexcept { return own_.get(); }

    // Entry points: callable from any thread; they dispatch to the executor.
    void start_connect(std::string address, std::string client_name, reply_handler h);
    void start_request(byte_buffer frame, std::uint32_t request_id, reply_handler h);
    /// Writes records to a writer handle, each a write of its own, with one
    /// completion for all (the first error, the deliveries summed); copies
    /// them before it returns. At least one record.
    /// Sends a lost frame for `handle`, in order with its writes.
    void tell_lost(std::uint32_t handle, std::uint32_t count);
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

    std::uint32_t next_request_id() noexcept { return protocol_.next_request_id(); }
    /// Handles are numbered by the client, so they survive a reconnect.
    std::uint32_t next_handle() noexcept { return next_handle_++; }
    [[nodiscard]] std::uint32_t max_record_size() const noexcept
    {
        return protocol_.max_record_size();
    }
    /// The largest record a write may take when it goes by lane (0: none here).
    [[nodiscard]] std::uint32_t max_lane_record() noexcept
    {
        return protocol_.lanes().max_record();
    }
    [[nodiscard]] const std::string& host_name() const noexcept { return protocol_.host_name(); }
    [[nodiscard]] const std::string& plugin_name() const noexcept
    {
        return protocol_.plugin_name();
    }
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
    // A list: erasing from a deque move-assigns, and Boost 1.81's
    // any_completion_handler must never be move-assigned (it recurses).
    using read_queue = std::list<read_op>;

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
    void connect_unix(const std::string& path, const std::string& client_name);
    /// The TLS context of a tls: connect, or null (failure_ says why).
    std::shared_ptr<asio::ssl::context> make_tls_context();
    /// After the TCP connect of a tls: address: the handshake, then the hello.
    void handshake(const std::string& where, const std::string& client_name);
    void connect_tcp(const std::string& host, const std::string& port,
                     const std::string& client_name);
    /// The stream is connected: say hello and start reading.
    void on_connected(const std::string& client_name);
    /// The connect completes: welcomed (no error), or failed before any frame.
    void end_connect(error_code ec);
    void read_loop();
    /// read_loop on a Unix socket that may carry lane fds: recvmsg, not read.
    void read_with_fds();
    /// `n` bytes came in: the frames they complete are taken, then reading goes on.
    void on_bytes(std::size_t n);
    // Writes (start_write): by the socket, or by the handle's lane, or
    // waiting for lane room in the handle's order.
    void write_by_socket(std::uint32_t handle, std::span<const asio::const_buffer> records,
                         write_handler h, results pace);
    /// write_by_lane, a batch too large for half the lane in pieces that fit.
    void write_by_lane_in_pieces(std::uint32_t handle, std::span<const asio::const_buffer> records,
                                 write_handler h, results pace);
    void write_by_lane(std::uint32_t handle, std::span<const asio::const_buffer> records,
                       write_handler h, results pace);
    void wait_for_lane(std::uint32_t handle, std::span<const asio::const_buffer> records,
                       write_handler h, results pace, bool by_lane);
    /// Hands the descriptor frames placed (in the order placed) to the output.
    void send_placed();
    /// Retries the waiting writes, handle by handle, in order. `moved`: a
    /// lane event came, so the wait for room starts again (arm_lane_wait).
    void drain_waiting_writes(bool moved = false);
    /// While writes wait, a lane_wait deadline from the last lane event: at
    /// it, their lanes are stalled and what fits the socket takes it.
    void arm_lane_wait(bool moved);
    /// Ends the waiting writes of one handle (all: 0) with ec.
    void end_waiting_writes(std::uint32_t handle, error_code ec);
    /// Does what a frame left to the driver.
    void act(frame_action&& a);
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
    void fail(error_code ec, std::string why = {});
    /// For good: every waiting read and the run end.
    void shut_down(error_code gone);
    void flush();
    [[nodiscard]] bool on_this_thread() const;
    void serve(std::uint32_t handle, reader_state& r, read_queue& waiting);
    void complete_read(read_op& op, error_code ec, received_record record, std::size_t size);
    /// Ends every waiting read of a handle with ec; the handle's queue goes.
    void end_reads(std::uint32_t handle, error_code ec);
    /// Makes a waiting read wait by `timeout`, from now: 0 ends it with
    /// sem_timeout at once, mailslot_wait_forever waits without a timer.
    void arm_wait(std::uint32_t handle, read_op& op, std::uint32_t timeout);
    /// Ends one waiting read with ec (a timeout, a cancellation), if it still waits.
    void finish(std::uint32_t handle, std::uint64_t op_id, error_code ec);

    std::unique_ptr<asio::io_context> own_;
    asio::any_io_executor executor_;
    std::unique_ptr<byte_stream> stream_; // whichever transport the address named
    client_protocol protocol_;
    std::string token_; // a plugin's token, sent in every hello
    tls_options tls_;
    std::shared_ptr<asio::ssl::context> tls_context_; // of the tls: connect under way
    std::string shown_fingerprint_;                   // the key the host showed in it

    frame_buffer in_;
    bool reads_fds_ = false; // the hello asked for lanes: fds may come with the bytes
    byte_buffer writing_;    // the bytes of the socket write under way
    bool write_active_ = false;

    std::atomic<std::uint32_t> next_handle_{1};
    // Bumped by every failure: handlers of an older socket see it and stand down.
    std::uint64_t generation_ = 0;
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
    std::uint64_t next_read_op_ = 1;
    // The reads waiting on each reader handle, in order; bounded by the
    // callers (each waiting read is an operation of theirs under way).
    std::unordered_map<std::uint32_t, read_queue> waiting_;
    std::optional<reply_handler> connecting_;

    // A write placed in its lane, on its way to the output. Placed under the
    // lanes' lock on any thread, handed on in the same order by send_placed().
    struct placed_write {
        std::uint32_t handle;
        byte_buffer frame;
        write_handler handler;
        std::uint32_t records;
        results pace;
        std::uint64_t generation; // of the lanes: a reset since means its lane is gone
    };
    std::mutex placed_mutex_;
    std::list<placed_write> placed_;
    // Writes waiting for lane room (or behind such), per handle, in order,
    // with their records copied.
    struct waiting_write {
        std::vector<std::uint8_t> bytes;
        std::vector<std::uint32_t> sizes;
        write_handler handler;
        results pace;
        bool by_lane; // else it only waits its turn behind them
    };
    std::unordered_map<std::uint32_t, std::list<waiting_write>> waiting_writes_;
    asio::steady_timer lane_wait_timer_;
    std::uint64_t lane_wait_armed_ = 0; // the arming the timer waits for (0: none)
    std::uint64_t lane_wait_armings_ = 0;

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
