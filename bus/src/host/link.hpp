// One link to a peer host, without I/O: frames in, frames out, and the core.
// A link is both ends at once: the origin of this host's writes to the
// peer's slots, and the destination of the peer's writes into this host's
// slots. Each destination (a flow) has credits of its own, so a full remote
// slot holds back only its own writers; at the destination each flow is a
// core session of its own, so a full slot holds back only its flow.
//
// Single-threaded: every call comes from the host's io_context thread.
#pragma once

#include "link_frames.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "core/core.hpp"

namespace slotbus::bus {

class host_link {
public:
    using clock = std::chrono::steady_clock;

    struct settings {
        std::string self; ///< this host's name
        std::string peer; ///< the peer's name in the peers file (case-folded)
        /// Cost one destination may have in flight before its writers wait
        /// (what this host grants the peer's flows).
        std::uint32_t flow_credit = 256 * 1024;
        /// Cost all destinations of the link may have in flight together.
        std::uint64_t window = 8u << 20;
        /// Destinations open at once, each way.
        std::uint32_t max_flows = 1024;
        /// How long writes whose result is outstanding survive a lost stream
        /// (and the peer's flows here): a stream back within it resumes.
        std::chrono::milliseconds resume_window{30'000};
    };

    host_link(core& routing, settings options);

    /// The origin says it has its results (link_ack) once per this many.
    static constexpr std::uint64_t ack_every = 1024;
    /// Results kept for a peer that has not said it has them: past this the
    /// peer is cut off (an honest one acknowledges every ack_every).
    static constexpr std::size_t max_results_logged = 1u << 16;
    ~host_link();
    host_link(const host_link&) = delete;
    host_link& operator=(const host_link&) = delete;

    [[nodiscard]] const settings& options() const noexcept { return options_; }

    // ---- the stream ---------------------------------------------------------------------
    /// An authenticated stream to the peer is up: the hello goes out.
    void connected(clock::time_point now);
    /// One frame from the peer. False: it broke the protocol; the stream is
    /// to be closed after the output (a fatal frame) is sent; why() says what.
    bool feed(const frame_view& frame, clock::time_point now);
    /// The stream is gone; unfinished writes wait for the next within resume_window.
    void disconnected(clock::time_point now);
    /// The hellos crossed: writes flow.
    [[nodiscard]] bool up() const noexcept { return state_ == state::up; }
    [[nodiscard]] bool has_output() const noexcept
    {
        return !out_.empty() || !results_out_.empty();
    }
    [[nodiscard]] std::size_t output_size() const noexcept
    {
        return out_.size() + results_out_.size();
    }
    void take_output(byte_buffer& into);
    [[nodiscard]] const std::string& why() const noexcept { return why_; }
    /// A ping (its pong measures the round trip) and the lowest pending write,
    /// so the peer may forget results this host has.
    void heartbeat(clock::time_point now);
    /// Nothing came from the peer since this.
    [[nodiscard]] clock::time_point last_heard() const noexcept { return last_heard_; }
    /// Gives up what waited past resume_window for a stream.
    void tick(clock::time_point now);

    // ---- origin: this host's writers' destinations on the peer ----------------------------
    /// The flow for `name` on the peer (shared by its writers), or 0 with ec
    /// (too_many_open_files past max_flows).
    std::uint32_t acquire(const slot_name& name, std::error_code& ec);
    void release(std::uint32_t flow);
    /// remote_hosts::write for one of its flows.
    bool write(std::uint32_t flow, byte_span records, std::uint32_t count, write_ticket ticket);

    // ---- destination: the peer's writes into this host's slots ---------------------------
    /// The session is one of this link's flows here.
    [[nodiscard]] bool owns(session_id id) const { return flow_of_session_.contains(id); }
    /// The core touched one of its flow sessions: results (and room) to pass on.
    void collect(session_id id);

    /// For `slotbus hosts`.
    [[nodiscard]] boost::json::object status() const;

private:
    enum class state { down, hello_sent, up };

    // A write frame sent and without all its results; kept for a resend.
    struct pending_frame {
        std::uint32_t flow = 0;
        std::uint32_t count = 0;
        std::uint32_t resolved = 0; // results taken, a prefix of its records
        write_ticket ticket;
        std::uint32_t index = 0; // of its first record in the writer's frame
        std::uint64_t cost = 0;
        byte_buffer records;
    };
    struct out_flow {
        std::string path; // as the writer spelled it
        std::string key;
        std::uint32_t writers = 0;
        std::uint64_t consumed = 0, granted = 0; // cost sent, and allowed, since opened
        std::uint64_t pending = 0;               // frames without all results
        std::set<session_id> blocked;            // writers waiting for credit
        bool opened = false;                     // link_open sent in this session
    };
    // A frame of the peer's, not yet taken by its slot (the slot was full).
    struct held_frame {
        std::uint64_t first_seq = 0;
        std::uint32_t count = 0;
        byte_buffer body; // a write frame's body: handle 1 and the records
    };
    struct in_flow {
        session_id session = 0;
        std::string name;             // the slot here: \\.\mailslot\PATH
        std::uint32_t open_error = 0; // the open's refusal: every record's result
        std::uint64_t consumed = 0, granted = 0;
        std::uint64_t announced = 0; // granted, as last told
        std::deque<held_frame> held;
        // Frames fed, in order, whose results have not all come: {first_seq, count, cost}.
        struct fed_frame {
            std::uint64_t first_seq;
            std::uint32_t count;
            std::uint64_t cost;
        };
        std::deque<fed_frame> fed;
    };

    bool fail(std::string why);
    bool on_hello(byte_span body, clock::time_point now);
    bool on_open(byte_span body);
    bool on_write(byte_span body);
    bool on_results(byte_span body);
    bool on_credit(byte_span body);
    bool on_close(byte_span body);
    void send_open(std::uint32_t flow, out_flow& f);
    /// After a resume: a flow the peer had, or one acquired meanwhile.
    void reopen(std::uint32_t flow, out_flow& f);
    /// A flow with no writer and nothing pending is closed.
    void retire_if_idle(std::uint32_t flow);
    void send_frame(std::uint32_t flow, out_flow& f, byte_span records, std::uint32_t count,
                    write_ticket ticket, std::uint32_t index);
    /// Every pending write fails with `e` (their outcome is unknown); flows
    /// are to open afresh.
    void give_up_writes(error e);
    /// The peer's flows here are gone (a new session of its, or none for too long).
    void drop_peer_flows();
    void feed_held(std::uint32_t flow, in_flow& f);
    /// Opens the flow's writer handle here (again, after a refusal).
    void open_here(std::uint32_t flow, in_flow& f);
    void take_results(std::uint32_t flow, in_flow& f);
    void add_result(std::uint32_t flow, std::uint64_t first_seq, std::uint32_t count,
                    std::uint32_t error, std::uint32_t delivered);
    /// Appends a logged run (by number) to the results to send.
    void queue_result(std::uint64_t number, const link_result_run& run);
    void end_reopening();
    /// Tells the peer which of its results this host has, when that moved on.
    void acknowledge(bool always);
    void flush_results();
    void wake(std::set<session_id>& sessions);
    [[nodiscard]] static bool may_take(std::uint64_t consumed, std::uint64_t granted,
                                       std::uint64_t initial, std::uint64_t cost);

    core& core_;
    settings options_;
    state state_ = state::down;
    byte_buffer out_;
    std::string why_;
    clock::time_point last_heard_{};
    clock::time_point down_since_{};
    bool ever_up_ = false;
    bool given_up_ = false; // the resume window passed since the link was last up
    std::uint32_t ping_nonce_ = 0;
    clock::time_point ping_sent_{};
    std::chrono::microseconds round_trip_{0};

    // The peer, from its hello.
    std::string peer_name_;
    std::uint32_t peer_max_record_ = 0;
    std::uint32_t peer_flow_credit_ = 0;
    std::uint64_t peer_window_ = 0;

    // Origin.
    std::uint64_t session_ = 0; // this host's write session with the peer
    std::uint64_t next_seq_ = 1;
    std::uint32_t next_flow_ = 1;
    std::unordered_map<std::uint32_t, out_flow> out_flows_;
    std::unordered_map<std::string, std::uint32_t> flow_of_key_;
    std::map<std::uint64_t, pending_frame> pending_; // by first sequence number
    std::uint64_t in_flight_ = 0;                    // cost of pending_
    std::set<session_id> window_blocked_;
    std::uint64_t results_received_ = 0; // the peer's result runs taken, by number
    std::uint64_t results_acked_ = 0;    // results_received_ as last told

    // Destination.
    std::uint64_t peer_session_ = 0; // the peer's session whose writes are held here
    std::uint64_t received_through_ = 0;
    std::unordered_map<std::uint32_t, in_flow> in_flows_;
    std::unordered_map<session_id, std::uint32_t> flow_of_session_;
    std::uint64_t in_outstanding_ = 0; // cost taken and without results, all flows
    // Results the origin may not have yet (a stream can lose them), by first
    // sequence number, until its link_ack passes them; and those to send now.
    std::deque<link_result_run> results_log_;
    std::uint64_t log_first_ = 1; // the number of results_log_.front()
    std::uint64_t out_first_ = 1; // the number of the first run in results_out_
    byte_buffer results_out_;
    // After a resumed hello the origin opens its live flows again; the
    // first other frame ends that, and idle flows it did not open are gone
    // (their close was lost with a stream).
    bool reopening_ = false;
    std::set<std::uint32_t> reopened_;
    byte_buffer write_body_;  // the frame being taken, as a write frame's body
    byte_buffer flow_output_; // what a flow session was sent, being read

    struct counters {
        std::uint64_t records_out = 0, bytes_out = 0, records_in = 0, bytes_in = 0;
        std::uint64_t resent = 0, duplicates = 0, unknown_outcome = 0, refused = 0;
        std::uint64_t streams = 0, resumed = 0;
    } counters_;
};

} // namespace slotbus::bus
