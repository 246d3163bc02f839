// A host's identity on links: an Ed25519 key and a self-signed certificate,
// known to its peers by the SHA-256 of its public key (the fingerprint they
// pin). The same files serve a TLS client as its key. TLS itself:
// slotbus/detail/tls.hpp.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace slotbus::bus {

/// "sha256:" and 64 hex digits: the hash of the certificate's public key
/// (SubjectPublicKeyInfo, DER), so a new certificate for the same key keeps it.
std::string fingerprint_of_certificate(const std::filesystem::path& cert, std::string& why);

/// Written as fingerprints are: "sha256:" and 64 lowercase hex digits.
[[nodiscard]] bool valid_fingerprint(std::string_view text) noexcept;

/// Writes a new Ed25519 key (`host.key`, mode 0600) and a self-signed
/// certificate for it (`host.pem`, CN = host_name) into `directory`; refuses
/// to overwrite a key. Returns the fingerprint, or "" with `why`.
std::string generate_host_key(const std::filesystem::path& directory, const std::string& host_name,
                              std::string& why);

} // namespace slotbus::bus
