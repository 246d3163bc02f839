// The routing core: sessions, handles and slots. Frames in, frames out into
// each session's outbox; no sockets, so every rule is testable step by step.
#pragma once

#include "lane.hpp"
#include "namespace_tree.hpp"
#include "policy.hpp"
#include "remote.hpp"
#include "slot.hpp"
#include "subscription_tree.hpp"

#include "slotbus/protocol.hpp"

#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace slotbus::bus {

/// Topics that declare the event types they accept (--topic-types).
struct topic_types {
    topic_pattern pattern;
    std::vector<std::string> accepted; ///< CloudEvents `type` values
};

/// The host's limits; every queue and table is bounded by one of them.
struct core_limits {
    std::uint32_t max_record_size = 1u << 20;     ///< largest record the host takes (1 MiB)
    std::uint64_t default_slot_budget = 8u << 20; ///< unread bytes per slot unless create asks
    std::uint64_t max_slot_budget = 256u << 20;   ///< the most a create may ask for
    /// The least a slot's budget is: 0 means one record of max_record_size
    /// with its bookkeeping (a smaller budget would hold a writer of large
    /// records back on every record). The core's own tests set it lower.
    std::uint64_t min_slot_budget = 0;
    std::uint32_t max_handles = 4096;       ///< open handles per connection
    std::uint32_t max_subscriptions = 1024; ///< patterns per slot
    // What one connection, and everyone together, may make the host hold:
    // past these a create or subscribe fails (too_many_open_files for
    // counts, not_enough_quota for budgets), never the connection.
    std::uint32_t max_connection_subscriptions = 4096; ///< patterns one connection subscribed
    std::uint64_t max_connection_budget = 4ull << 30;  ///< budgets of the slots it created
    std::uint32_t max_slots = 65536;                   ///< slots in all
    std::uint32_t max_total_subscriptions = 1u << 18;  ///< patterns in all
    std::uint64_t max_total_budget = 4ull << 30;       ///< budgets of every slot
    std::uint32_t max_window = 4096;                   ///< records pushed ahead to one reader
    std::uint64_t push_bytes = 1u << 20;               ///< bytes pushed ahead to one reader
    /// Output waiting for one connection: past it, nothing more is pushed to
    /// its readers (their records wait in their slots, under the slots'
    /// budgets) and the I/O layer stops reading it, until it has gone.
    std::size_t max_outbox = 8u << 20;
    std::string host_name;            ///< `\\HOST\` names that mean this machine
    std::string domain = "workgroup"; ///< `\\DOMAIN\` names that mean a broadcast
    /// A duplicate token is good for one attach within this long.
    std::chrono::milliseconds token_lifetime{60'000};
    std::uint32_t max_tokens = 64; ///< duplicate tokens one connection may hold unused
    /// A full slot whose readers read nothing holds its writers back this
    /// long at most; then it is marked slow and drops (counting) what does
    /// not fit, until it has read down to half its budget. Checked by tick().
    std::chrono::milliseconds slow_after{1000};
    // Lanes (docs/lanes.md): records of lane_threshold bytes or more that a
    // local writer puts in shared memory, passing only their descriptors.
    std::uint32_t lane_threshold = 16u << 10;  ///< 0: no lanes
    std::uint32_t max_lane_record = 16u << 20; ///< the largest record a lane takes
    std::uint64_t lane_bytes = 8u << 20;       ///< a lane's size, unless its records need more
    std::uint64_t max_lane_bytes = 64u << 20;  ///< the largest lane
    std::uint32_t max_connection_lanes = 64;   ///< lanes one connection's writers hold
    std::uint64_t max_connection_lane_bytes = 256u << 20;
    std::uint64_t max_total_lane_bytes = 1ull << 30;
    /// A write to a name some of these match must be an envelope whose type
    /// every matching entry accepts; else error::invalid_data, for that record.
    std::vector<topic_types> declared_types;

    /// A frame holds one record of the largest size, or a batch of smaller
    /// ones (the SDK joins records into frames of up to 64 KiB, whatever
    /// the largest record is).
    [[nodiscard]] std::size_t max_frame_size() const noexcept
    {
        return std::max<std::size_t>(max_record_size, record_list_builder::batch_bytes) + 64;
    }
};

/// What the kernel says of a local peer (SO_PEERCRED, SO_PEERGROUPS).
/// The uid and gid of an identity the kernel does not give (a peer host, a
/// TLS client): nobody's.
constexpr std::uint32_t nobody_id = 65534;
/// A gid that is no group's ((gid_t)-1; no rule may name it): a loopback
/// TCP client's, so group rules are not about it.
constexpr std::uint32_t no_group_id = 0xffffffff;

struct peer_info {
    std::uint32_t pid = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t pgid = 0; ///< its process group when it connected
    std::vector<std::uint32_t> groups;
    /// A TLS client's name, from the clients file entry that pins its key
    /// (uid and gid are then nobody's): see identity::client.
    std::string client;
};

/// Answers admin frames (the host's I/O layer knows the plugins and how to
/// stop): returns the JSON answer, or sets ec (error::invalid_function for an
/// unknown command).
using admin_handler = std::function<std::string(session_id, std::string_view command,
                                                std::string_view argument, std::error_code& ec)>;

/// What the I/O around the core does after a frame.
enum class feed_result {
    next,    ///< go on with the next frame
    blocked, ///< a slot is full: keep this frame, read nothing more, feed it again on resume
    close,   ///< flush the outbox (it ends with a fatal frame), then close
};

/// Single-threaded: every call comes from the thread that runs the host's io_context.
class core : private lane_listener {
public:
    using clock = std::chrono::steady_clock;

    explicit core(core_limits limits);
    ~core();

    [[nodiscard]] const core_limits& limits() const noexcept { return limits_; }

    session_id connect(peer_info peer);
    /// A session for writes that came over the link from peer `host`: greeted
    /// already, known as that host (the policy's "host" rules decide what it
    /// may write), with no kernel identity (uid and gid nobody's).
    session_id connect_peer(std::string_view host);
    /// A session for records that broadcasts of `domain` bring (broadcasts):
    /// known as that domain (the policy's "domain" rules decide what it may
    /// write), with no kernel identity. Its writer handles are opened and
    /// written through the *_inbound calls below, never by frames.
    session_id connect_domain(std::string_view domain);
    /// A writer handle of a domain's session for the records `host` (as its
    /// datagrams name it) broadcasts to `name`: the policy decides now, as
    /// for an open (access_denied); too_many_open_files past max_handles.
    std::error_code open_inbound(session_id id, std::uint32_t handle, std::string_view host,
                                 const slot_name& name);
    /// One record through such a handle to every local slot its name
    /// reaches: queued where there is room, else dropped and counted (a
    /// datagram cannot wait: no slot holds a broadcast back), after `missed`
    /// records its sender numbered for the name and this host never got,
    /// told to each slot's readers first. Returns how many slots took it;
    /// ec access_denied when a policy reload took the handle away
    /// (invalid_data when a type declared for the name refuses it).
    std::uint32_t deliver_inbound(session_id id, std::uint32_t handle, byte_span record,
                                  std::uint32_t missed, std::error_code& ec);
    void close_inbound(session_id id, std::uint32_t handle);
    /// Closes every handle the session holds; slots whose last reader it was
    /// are destroyed. `reason` is what "connections" shows of it among the
    /// recently closed (a fatal frame the host sent it says more, and wins).
    void disconnect(session_id id, std::string_view reason = "closed by the host");

    feed_result feed(session_id id, const frame_view& frame);
    /// The I/O layer found bytes that are no frame: queue a fatal frame saying why.
    void reject(session_id id, std::string_view why);
    /// Ends a batch of frames read together: their write results go out as one
    /// frame — unless all came in `post` frames, whose results wait for the
    /// session's next output (or for max_held_post_bytes of them).
    void end_batch(session_id id);
    /// The most the host holds of a session's posted writes' results: their
    /// frames' bytes (the SDK keeps 4 MiB unacknowledged), and runs of results.
    static constexpr std::size_t max_held_post_bytes = 1u << 20;
    static constexpr std::size_t max_held_runs = 1024;

    /// Frames waiting to be sent to the session.
    [[nodiscard]] const byte_buffer& outbox(session_id id) const;
    /// The session's hello was taken.
    [[nodiscard]] bool greeted(session_id id) const;
    /// Something to send: frames, or notices owed and made at take_output.
    [[nodiscard]] bool has_output(session_id id) const;
    /// Moves the waiting frames into `into` (cleared first) for the I/O layer
    /// to send, with any write results held until now, and the fds that go
    /// with some of their bytes (lane_open frames) into `fds`, in order.
    void take_output(session_id id, byte_buffer& into, std::vector<attached_fd>& fds);
    /// For a session that is sent no fds (it asked for no lanes).
    void take_output(session_id id, byte_buffer& into);

    /// Sessions given output or resumed since the last call.
    std::vector<session_id> take_touched();
    /// True once for a session that was blocked and may go on.
    bool take_resume(session_id id);

    [[nodiscard]] const namespace_tree& names() const noexcept { return names_; }

    /// A plugin the host launches connects with this token; its connection,
    /// and the slots it creates, are known by the plugin's name and may do
    /// what its manifest's permissions (and the policy) say.
    void add_plugin_token(std::string token, std::string plugin,
                          std::shared_ptr<const grant_list> permissions);
    /// The token is good only for connections of this process (or of its
    /// process group): a copy in another process is refused.
    void bind_plugin_token(const std::string& token, std::uint32_t pid);
    /// Later hellos with the token are refused; connections made with it stay.
    void revoke_plugin_token(const std::string& token);

    /// Takes a new policy and checks every open handle and subscription
    /// against it: those it no longer allows are closed (a subscription is
    /// removed) and their owners told with a `revoked` frame. Returns how many.
    std::size_t set_policy(std::shared_ptr<const policy> rules);
    [[nodiscard]] const policy& rules() const noexcept { return *policy_; }
    void set_admin_handler(admin_handler handler) { admin_handler_ = std::move(handler); }
    /// Makes lane memory; without it, no connection gets lanes.
    void set_lane_maker(lane_maker make) { make_lane_ = std::move(make); }
    /// Lanes that exist, and their bytes (for stats and tests).
    [[nodiscard]] std::size_t lanes() const noexcept { return lanes_.size(); }
    [[nodiscard]] std::uint64_t lane_bytes() const noexcept { return total_lane_bytes_; }
    /// Where writes to other hosts' names go; without it they fail with bad_netpath.
    void set_remote(remote_hosts* remote) noexcept { remote_ = remote; }
    /// Where broadcast writes also go (`\\DOMAIN\`, `\\*\`); without it they
    /// reach this host's slots only.
    void set_broadcaster(broadcaster* b) noexcept { broadcaster_ = b; }
    /// Results of records of a write frame given to remote_hosts::write:
    /// `count` records from `index` (0: the frame's first). They go to the
    /// writer in order with every other result of its connection.
    void remote_results(write_ticket ticket, std::uint32_t index, std::uint32_t count,
                        std::uint32_t error, std::uint32_t delivered);
    /// A session held back by a remote destination without credit may go on.
    void wake(session_id id);
    /// Write frames whose results wait on a remote host, at most, per
    /// connection (with the local results behind them): past it, the
    /// connection is held back until results come.
    static constexpr std::size_t max_deferred_entries = 1u << 16;
    /// What the core takes for now (token lifetimes); tests step it by hand.
    void set_clock(std::function<clock::time_point()> now) { now_ = std::move(now); }

    /// Marks slow the slots that have held writers back for slow_after; the
    /// I/O layer calls it a few times a second.
    void tick();
    /// What a slot's back-pressure did since the last call: for the log.
    struct slot_event {
        enum what_t {
            holding,   ///< it has held writers back for held_notice_after
            released,  ///< ... and holds none any more
            slow,      ///< marked slow (core_limits::slow_after)
            caught_up, ///< no longer slow
        } what;
        std::string slot;
        std::size_t writers = 0;           ///< held, for `holding`
        std::chrono::milliseconds held{0}; ///< for how long, for `holding` and `released`
    };
    std::vector<slot_event> take_slot_events();
    /// How long a slot holds writers back before the log is told.
    static constexpr std::chrono::seconds held_notice_after{1};

    /// The "slots" admin answer: the slots whose path starts with the
    /// components of a prefix (a name or short form; empty: all), a page at a
    /// time so it fits a frame. `argument` is the prefix, or a JSON object
    /// {"prefix": P, "after": KEY, "limit": N}; the answer's "next" is the
    /// key to ask for after, or null on the last page. The
    /// host's listing is in the order a walk of the tree gives.
    [[nodiscard]] boost::json::object slots(std::string_view argument, std::error_code& ec) const;
    /// The core's part of the "stats" answer: totals and every slot's counters.
    /// `top`: how many of the busiest slots its "slots" lists (1000 at most).
    [[nodiscard]] boost::json::object stats(std::size_t top = 100) const;
    /// The "connections" answer: open connections (at most `limit`, in
    /// order of id) and the last closed_kept closed ones, each with who it
    /// is, what it moved and, once closed, why.
    [[nodiscard]] boost::json::object connections(std::size_t limit = 1000) const;
    static constexpr std::size_t closed_kept = 128;

private:
    struct handle_entry;
    struct session;

    feed_result dispatch(session& s, const frame_view& frame);
    feed_result on_hello(session& s, byte_span body);
    feed_result on_create(session& s, byte_span body);
    feed_result on_open(session& s, byte_span body);
    feed_result on_close(session& s, byte_span body);
    /// A `write` (prompt: its results go out with this batch) or a `post`.
    feed_result on_write(session& s, byte_span body, bool prompt);
    feed_result on_lost(session& s, byte_span body);
    feed_result on_lane_request(session& s, byte_span body);
    feed_result on_lane_mapped(session& s, byte_span body);
    feed_result on_lane_closed(session& s, byte_span body);
    /// A `write_lane` (prompt) or a `post_lane`.
    feed_result on_write_lane(session& s, byte_span body, bool prompt);
    /// What on_write and on_write_lane share: admission, routing, results.
    template <class Records>
    feed_result write_records(session& s, std::uint32_t handle, Records& records, byte_span body,
                              bool prompt);
    /// The writer's lane is retired (a holder lost a right, the handle
    /// closes): no new record goes into it; the writer is told, unless
    /// its handle is going.
    void retire(lane& l, bool tell_writer);
    /// Every lane whose records `s` holds is retired: it may have lost the
    /// right to some name's records (a reader closed, unsubscribed, revoked).
    void retire_lanes_held_by(session& s);
    /// Sends r's session an fd of the lane (once); false when it cannot.
    bool open_lane_for(session& s, lane& l);
    void lane_released(lane& l) override;
    void lane_gone(lane& l) override;
    feed_result on_info(session& s, byte_span body);
    feed_result on_set_timeout(session& s, byte_span body);
    feed_result on_read_report(session& s, byte_span body);
    feed_result on_poll(session& s, byte_span body);
    feed_result on_duplicate(session& s, byte_span body);
    feed_result on_attach(session& s, byte_span body);
    feed_result on_subscribe(session& s, byte_span body);
    feed_result on_unsubscribe(session& s, byte_span body);
    feed_result on_admin(session& s, byte_span body);
    /// The slot a subscribe or unsubscribe is about, or nullptr with ec set.
    slot* subscription_target(session& s, std::uint32_t handle, std::string_view text,
                              topic_pattern& pattern, std::error_code& ec);

    feed_result fatal(session& s, error e, std::string_view why);
    /// Decides, and counts a denial against the session's identity.
    bool allowed(session& s, right r, const topic_pattern& name);
    /// Closes a handle the policy no longer allows and tells its owner; the
    /// handle's number stays taken (its operations fail with access_denied).
    void revoke(session& s, std::uint32_t handle);
    /// Write results go out ahead of whatever the session is sent next.
    static void flush_acks(session& s);
    /// A result for `writes` writes in a row: behind results a remote host
    /// still owes, it waits for them.
    static void add_result(session& s, std::uint32_t error, std::uint32_t delivered,
                           std::uint32_t writes);
    feed_result write_remote(session& s, handle_entry& h, byte_span body, const write_frame& m,
                             bool prompt);
    /// So do owed timeout_changed notices.
    void flush_notices(session& s);
    template <class Message> void send(session& s, const Message& m);
    void reply(session& s, std::uint32_t request, std::error_code ec, std::uint32_t handle = 0,
               std::uint32_t a = 0, std::uint32_t b = 0, std::string_view text = {});

    handle_entry* find_handle(session& s, std::uint32_t handle);
    /// Why a request that needs a reader handle cannot have this one (null:
    /// no such handle; revoked by a policy reload; a writer's).
    static error not_a_reader(const handle_entry* h) noexcept;
    void add_reader(session& s, slot& target, std::uint32_t handle);
    [[nodiscard]] std::error_code handle_check(const session& s, std::uint32_t handle) const;
    void close_handle(session& s, std::uint32_t handle);
    /// What closing a reader handle does to its slot (the last reader destroys it).
    void drop_reader(reader& r);
    slot* target_of(handle_entry& h);
    void route(handle_entry& h);
    [[nodiscard]] bool reads(const session& s, const slot& target) const;
    static bool accepted(const std::vector<const topic_types*>& rules, byte_span record);
    void pump(slot& target);
    /// Appends a record pushed to r to its session's output.
    void emit(reader& r, const queued_record& q);
    /// Appends a run of records of one origin pushed to r, in wire form, to its session's output.
    void emit(reader& r, byte_span records, origin* from);
    /// The id of `from` on the session's connection: announced (an origin
    /// frame) the first time.
    std::uint32_t origin_id(session& s, origin* from);
    session& session_of(const reader& r);
    void wake_writers(slot& target);
    void uncharge_subscription(session_id by);
    /// Every writer the slot holds back goes on (resumed), now.
    void release_writers(slot& target);
    void destroy(slot& target);
    void touch(session& s);

    core_limits limits_;
    lane_maker make_lane_;
    std::unordered_map<std::uint32_t, lane*> lanes_; // every lane that exists, by id
    std::uint32_t next_lane_ = 1;
    std::uint64_t total_lane_bytes_ = 0;
    namespace_tree names_;
    subscription_tree subscriptions_;
    std::uint64_t subscription_epoch_ = 0;
    std::uint64_t route_stamp_ = 0;
    std::uint64_t admit_stamp_ = 0;
    std::unordered_map<session_id, std::unique_ptr<session>> sessions_;
    session* fed_ = nullptr;     // the session feed() last looked up
    session* emitted_ = nullptr; // the session emit() last looked up
    struct duplicate_token {
        slot* target;
        session_id issuer;
        clock::time_point expires;
    };
    using token_map = std::unordered_map<std::string, duplicate_token>;
    static constexpr std::size_t max_tokens_in_all = 1u << 16;
    token_map tokens_; // each used once, then gone
    token_map::iterator erase_token(token_map::iterator it);
    std::function<clock::time_point()> now_ = [] { return clock::now(); };
    struct plugin_token {
        std::string plugin;
        std::shared_ptr<const grant_list> permissions;
        std::uint32_t pid = 0; // 0 until bound: good for no one
    };
    std::unordered_map<std::string, plugin_token> plugin_tokens_;
    std::shared_ptr<const policy> policy_;
    // Denials by identity and right, for stats; a bounded number of identities.
    static constexpr std::size_t max_denial_identities = 1024;
    std::map<std::string, std::map<right, std::uint64_t>> denials_;
    admin_handler admin_handler_;
    remote_hosts* remote_ = nullptr;
    broadcaster* broadcaster_ = nullptr;
    std::uint64_t total_budget_ = 0;        // budgets of every slot
    std::uint64_t total_subscriptions_ = 0; // patterns of every slot
    struct totals {
        std::uint64_t connections = 0; ///< accepted since start
        std::uint64_t writes = 0;      ///< write frames taken
        std::uint64_t write_errors = 0;
        std::uint64_t deliveries = 0; ///< copies queued (a fanned-out write counts each)
        std::uint64_t unrouted = 0;   ///< published records no slot received
        std::uint64_t slots_created = 0;
        std::uint64_t lane_writes = 0; ///< records described by write_lane and post_lane frames
    } totals_;
    // Traffic of the slots destroyed since start, so host totals only grow.
    slot_traffic gone_;
    std::uint64_t gone_dropped_ = 0;
    /// A closed connection as "connections" shows it (newest last).
    void remember_closed(const session& s, std::string_view reason);
    std::deque<boost::json::object> closed_;
    std::vector<session_id> touched_;
    std::vector<slot*> holding_; // slots that hold writers back, for tick()
    std::vector<slot_event> slot_events_;
    session_id next_session_ = 1;
};

} // namespace slotbus::bus
