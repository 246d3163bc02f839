// A host's identity on links: an Ed25519 key and a self-signed certificate,
// known to its peers by the SHA-256 of its public key (the fingerprint they
// pin). OpenSSL 3 through Boost.Asio SSL; TLS 1.3 only, both sides proving
// their key.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

namespace slotbus::bus {

/// "sha256:" and 64 hex digits: the hash of the certificate's public key
/// (SubjectPublicKeyInfo, DER), so a new certificate for the same key keeps it.
std::string fingerprint_of_certificate(const std::filesystem::path& cert, std::string& why);

/// Writes a new Ed25519 key (`host.key`, mode 0600) and a self-signed
/// certificate for it (`host.pem`, CN = host_name) into `directory`; refuses
/// to overwrite a key. Returns the fingerprint, or "" with `why`.
std::string generate_host_key(const std::filesystem::path& directory, const std::string& host_name,
                              std::string& why);

/// Says whether a peer's fingerprint is one this host pins.
using fingerprint_check = std::function<bool(const std::string& fingerprint)>;

/// A TLS 1.3 context for links, client and server alike: this host's
/// certificate and key, a peer certificate required, and accepted only when
/// `pinned` knows its fingerprint (no CA: the pin is the trust). Throws
/// std::runtime_error naming the file that is wrong.
boost::asio::ssl::context make_link_context(const std::filesystem::path& cert,
                                            const std::filesystem::path& key,
                                            fingerprint_check pinned);

/// The fingerprint of the certificate the peer of a finished handshake showed.
std::string peer_fingerprint(SSL* ssl);

} // namespace slotbus::bus
