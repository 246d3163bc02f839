#include "slotbus/detail/tls.hpp"

#include <memory>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdexcept>

namespace slotbus::detail {

namespace ssl = boost::asio::ssl;

std::string fingerprint_of(X509* certificate)
{
    EVP_PKEY* key = certificate ? X509_get0_pubkey(certificate) : nullptr;
    if (!key)
        return {};
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        return {};
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<std::size_t>(n), digest);
    OPENSSL_free(der);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned char b : digest) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

std::string peer_fingerprint(SSL* ssl)
{
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), &X509_free);
    return fingerprint_of(cert.get());
}

ssl::context make_pinned_context(const std::filesystem::path& cert,
                                 const std::filesystem::path& key, fingerprint_check pinned)
{
    ssl::context ctx(ssl::context::tls);
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS); // idle streams keep no buffers
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(cert.string(), ec);
    if (ec)
        throw std::runtime_error(cert.string() + ": not a usable certificate (" + ec.message() +
                                 ")");
    ctx.use_private_key_file(key.string(), ssl::context::pem, ec);
    if (ec || SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error(key.string() + ": not the key of " + cert.string());
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // No CA vouches for a peer: its certificate is taken when, and only
    // when, its key is pinned (OpenSSL's own verdict on a self-signed
    // certificate is beside the point).
    ctx.set_verify_callback([pinned = std::move(pinned)](bool, ssl::verify_context& v) {
        X509_STORE_CTX* store = v.native_handle();
        if (X509_STORE_CTX_get_error_depth(store) > 0)
            return true; // a chain above the peer's own certificate: the leaf decides
        X509* leaf = X509_STORE_CTX_get_current_cert(store);
        return leaf && pinned(fingerprint_of(leaf));
    });
    return ctx;
}

} // namespace slotbus::detail
