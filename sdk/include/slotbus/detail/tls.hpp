// Not API: TLS as slotbus speaks it, for the SDK's tls: connector and the
// host's listeners and links alike — TLS 1.3 only, both ends proving an
// Ed25519 key (`slotbus keygen`), and a peer trusted when, and only when,
// the SHA-256 of its public key is pinned (no CA). Included by .cpp files only.
#pragma once

#include "slotbus/export.hpp"

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace slotbus::detail {

/// Says whether a peer's fingerprint ("sha256:" and 64 hex digits) is pinned.
using fingerprint_check = std::function<bool(const std::string& fingerprint)>;

/// "sha256:" and 64 hex digits: the hash of the certificate's public key
/// (SubjectPublicKeyInfo, DER), so a new certificate for the same key keeps it.
/// Empty for a certificate without a usable key.
SLOTBUS_API std::string fingerprint_of(X509* certificate);

/// The fingerprint of the certificate the peer of a finished handshake showed.
SLOTBUS_API std::string peer_fingerprint(SSL* ssl);

/// A TLS 1.3 context, client and server alike: this end's certificate and
/// key, a peer certificate required, and accepted only when `pinned` knows
/// its fingerprint. Throws std::runtime_error naming the file that is wrong.
SLOTBUS_API boost::asio::ssl::context make_pinned_context(const std::filesystem::path& cert,
                                                          const std::filesystem::path& key,
                                                          fingerprint_check pinned);

} // namespace slotbus::detail
