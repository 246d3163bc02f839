// The bridge between this host's slots and NATS (plugins/nats-bridge/README.md).
//
// Threads: the bridge's state belongs to the SDK connection's thread (the
// one running bus.run()). libnats calls back on threads of its own (message
// delivery, publish acks, connection events) and a JetStream import pulls on
// a thread of its own; all of them only post to that thread, except where a
// member says it is shared (then it is guarded or atomic).
#pragma once

#include "config.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nats/nats.h>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace slotbus::bridge {

/// Message headers the bridge sets on what it exports.
inline constexpr const char* origin_header = "Slotbus-Origin"; ///< the exporting host
inline constexpr const char* epoch_header = "Slotbus-Epoch";   ///< its bridge's start, in ns
inline constexpr const char* seq_header = "Slotbus-Seq";       ///< core: its number per subject

/// Its figures, for the status topic.
struct bridge_counters {
    std::uint64_t exported = 0;     ///< local records published (core) or acked (jetstream)
    std::uint64_t export_drops = 0; ///< core publishes NATS refused (a full reconnect buffer)
    std::uint64_t republished = 0;  ///< jetstream publishes sent again (no ack in time)
    std::uint64_t unmappable = 0;   ///< local names no subject can carry: not exported
    std::uint64_t loops = 0;        ///< records this bridge imported: not exported again
    std::uint64_t echoes = 0;       ///< messages this host exported, back: not imported
    std::uint64_t imported = 0;     ///< messages written to a local name
    std::uint64_t unheard = 0;      ///< imported to a name nobody here listens on
    std::uint64_t refused = 0;      ///< imported, refused by the host (policy, a bad name)
    std::uint64_t duplicates = 0;   ///< jetstream redeliveries already written: dropped
    std::uint64_t redelivered = 0;  ///< jetstream messages delivered more than once
    std::uint64_t gaps = 0;         ///< core messages lost on the way (numbers skipped)
    std::uint64_t slow_drops = 0;   ///< core messages NATS dropped as this side fell behind
    std::uint64_t acknowledged = 0; ///< jetstream messages acked after their local write
    std::uint64_t disconnects = 0, reconnects = 0;
};

class bridge {
public:
    /// `me`: the plugin's name (its records are not exported: they came from
    /// NATS). `control`: a second connection, run on a thread of its own,
    /// for the status topic: imports held back by a full slot (which holds
    /// the whole connection's writes) must not silence the bridge's status.
    bridge(connection& bus, connection& control, bridge_config config, std::string me);
    ~bridge();
    bridge(const bridge&) = delete;
    bridge& operator=(const bridge&) = delete;

    /// Connects (retrying in the background if NATS is not up yet), creates
    /// the inboxes and subscriptions. Throws std::runtime_error with a reason.
    void start();
    /// Stops pulling and reading, waits briefly for publish acks, closes.
    void stop();
    [[nodiscard]] boost::json::object status() const;

private:
    struct pending_publish { // a jetstream export awaiting its ack
        std::string id, subject, data;
        std::chrono::steady_clock::time_point sent, retry_at;
        bool failed = false; // sent again at retry_at
    };
    struct import_state {
        import_route route;
        bridge* owner = nullptr;
        natsSubscription* sub = nullptr;
        std::thread puller; // jetstream
        // Shared with the puller (jetstream) or the delivery thread (core):
        std::mutex lock;
        std::condition_variable room;
        std::uint32_t in_flight = 0;   // delivered to this thread, not yet written here
        std::int64_t dropped_seen = 0; // core: NATS's slow-consumer drops counted so far
    };

    void connected();
    void make_streams();
    void start_imports();
    void read_core();
    void read_jetstream();
    void export_record(const received_record& r, route_mode mode);
    void send_jetstream(std::uint64_t number);
    void acked(std::string id, bool ok);
    void check_pending();
    void arm_pending_timer();
    void retry_later(pending_publish& p);
    void deliver(import_state& in, natsMsg* msg);
    void written(import_state& in, natsMsg* msg, std::uint64_t sequence,
                 boost::system::error_code ec);
    /// Done with a message: acked (jetstream) or not, destroyed, its room given back.
    void release(import_state& in, natsMsg* msg, bool ack);
    void remember(std::uint64_t sequence, bool written);
    void publish_status();
    void pull(import_state& in);

    static void on_connected(natsConnection*, void* self);
    static void on_disconnected(natsConnection*, void* self);
    static void on_reconnected(natsConnection*, void* self);
    static void on_core_message(natsConnection*, natsSubscription*, natsMsg*, void* state);
    static void on_publish_ack(jsCtx*, natsMsg*, jsPubAck*, jsPubAckErr*, void* self);

    connection& bus_;
    connection& control_;
    bridge_config config_;
    std::string me_;
    std::string epoch_;
    publisher out_;
    publisher status_out_; // used on control_'s thread only
    std::optional<server_slot> core_inbox_, jetstream_inbox_;
    std::vector<subscription> subscriptions_;
    boost::asio::steady_timer status_timer_, pending_timer_;

    natsOptions* options_ = nullptr;
    natsConnection* nc_ = nullptr;
    jsCtx* js_ = nullptr;
    bool set_up_ = false; // streams made, imports subscribed (on first connect)
    std::atomic<bool> stopping_{false};
    std::atomic<bool> up_{false};

    // Core exports: a number per subject, so an importer tells its gaps.
    std::unordered_map<std::string, std::uint64_t> core_seq_;
    // Jetstream exports awaiting acks, in the order they were read; ids to numbers.
    std::map<std::uint64_t, pending_publish> pending_;
    std::unordered_map<std::string, std::uint64_t> pending_ids_;
    std::uint64_t next_pending_ = 0;
    bool reading_jetstream_ = false;
    bool pending_timer_armed_ = false;
    // Imports. Core: the last number per origin, epoch and subject.
    std::vector<std::unique_ptr<import_state>> imports_;
    std::unordered_map<std::string, std::uint64_t> last_seq_;
    // Jetstream: stream sequences taken lately (true: written), so a
    // redelivery is written once. Bounded: the oldest go first.
    std::unordered_map<std::uint64_t, bool> written_;
    std::deque<std::uint64_t> written_order_;
    static constexpr std::size_t remembered_sequences = 65536;
    static constexpr std::size_t max_senders = 65536; // core: (origin, start, subject) numbered
    static constexpr std::uint32_t core_in_flight = 1024;

    bridge_counters counters_;
};

} // namespace slotbus::bridge
