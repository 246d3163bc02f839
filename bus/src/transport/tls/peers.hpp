// The peers file: the hosts this one links with, each by name, address and
// the fingerprint of its key — the only thing that makes it that host.
// An operator writes it by hand (docs/operator-guide.md, "Across machines").
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace slotbus::bus {

struct peer_config {
    std::string host;        ///< its name in `\\NAME\mailslot\...` (case-folded)
    std::string address;     ///< "HOST:PORT" to dial; empty: it dials this host
    std::string fingerprint; ///< "sha256:" + 64 hex digits
};

/// `{"peers": [{"host": "beta", "address": "198.18.0.2:47078",
/// "fingerprint": "sha256:..."}, ...]}`. nullopt with `why` naming the entry
/// and field that are wrong; `self` (this host's name) may not be a peer.
std::optional<std::vector<peer_config>> parse_peers(std::string_view text, const std::string& self,
                                                    std::string& why);
std::optional<std::vector<peer_config>> load_peers(const std::filesystem::path& file,
                                                   const std::string& self, std::string& why);

/// "HOST:PORT" (or "[V6]:PORT") split; false when it is not one.
bool split_address(std::string_view address, std::string& host, std::string& port);

} // namespace slotbus::bus
