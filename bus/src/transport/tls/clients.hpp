// The clients file: the programs that may connect to this host over TLS
// (`--listen tls:...`), each by a name the policy's "client" rules use and
// the fingerprint of its key — the only thing that makes it that client.
// An operator writes it by hand (docs/operator-guide.md, "Clients over the
// network").
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace slotbus::bus {

/// Each pinned fingerprint, and the client's name (case-folded).
using client_keys = std::unordered_map<std::string, std::string>;

/// `{"clients": [{"name": "ci-runner", "fingerprint": "sha256:..."}, ...]}`.
/// nullopt with `why` naming the entry and field that are wrong.
std::optional<client_keys> parse_clients(std::string_view text, std::string& why);
/// Read as the policy is: a file of the host's uid or root that no one else may write.
std::optional<client_keys> load_clients(const std::filesystem::path& file, std::string& why);

} // namespace slotbus::bus
