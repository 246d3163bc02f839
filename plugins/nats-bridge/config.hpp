// The bridge's configuration: where NATS is, how to log in, and its routes
// (plugins/nats-bridge/README.md). Checked whole when loaded: a route whose
// names cannot map onto subjects is refused then, with where and why.
#pragma once

#include "slotbus/topic_pattern.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slotbus::bridge {

enum class route_mode {
    core,      ///< core NATS: at most once; losses counted and told to readers as gaps
    jetstream, ///< at least once, deduplicated by the envelope's source and id
};

/// Local records matching `from` go to NATS, each on its name's subject.
struct export_route {
    topic_pattern from;
    std::string subject; ///< `from` as a subject pattern (what it covers on NATS)
    route_mode mode = route_mode::core;
};

/// NATS messages on `subject` come to the local name their subject maps to.
struct import_route {
    std::string subject;
    route_mode mode = route_mode::core;
    std::string stream;       ///< jetstream: the stream consumed
    std::string durable;      ///< jetstream: the durable pull consumer's name
    std::uint32_t batch = 64; ///< jetstream: messages pulled (and held) at most at once
};

/// A JetStream stream the bridge makes if it is missing (file storage).
struct stream_config {
    std::string name;
    std::vector<std::string> subjects;
};

struct bridge_config {
    std::vector<std::string> servers; ///< nats:// or tls:// URLs
    std::string origin;               ///< names this host in what it exports (default: hostname)
    // Credentials: at most one way.
    std::string user, password, token;
    std::filesystem::path creds_file;     ///< a .creds file (JWT and nkey seed)
    std::filesystem::path nkey_seed_file; ///< an nkey seed file, with nkey_public
    std::string nkey_public;
    // TLS: on with any of these, or a tls:// server.
    bool tls = false;
    std::filesystem::path tls_ca, tls_cert, tls_key;
    std::chrono::milliseconds reconnect_wait{250}, reconnect_jitter{250};
    /// JetStream publishes awaiting their ack, at most: past it, the export
    /// reads no more local records (its slot fills and holds writers back).
    std::uint32_t publish_window = 256;
    /// Core messages an import holds before NATS drops them (slow consumer).
    std::uint32_t core_pending = 65536;
    /// A JetStream publish without an ack for this long is sent again (same
    /// Nats-Msg-Id: the server drops the copy); a pulled message not acked
    /// for this long the server delivers again.
    std::chrono::milliseconds ack_wait{5000};
    std::vector<stream_config> streams;
    std::vector<export_route> exports;
    std::vector<import_route> imports;
    std::chrono::milliseconds status_interval{1000};
};

/// Parses and checks a configuration; nullopt with `why` (where and what).
std::optional<bridge_config> parse_config(std::string_view json, std::string& why);
std::optional<bridge_config> load_config(const std::filesystem::path& file, std::string& why);

} // namespace slotbus::bridge
