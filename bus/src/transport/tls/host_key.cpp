#include "host_key.hpp"

#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace slotbus::bus {

namespace {

struct free_x509 {
    void operator()(X509* x) const { X509_free(x); }
};
struct free_pkey {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct close_file {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using x509_ptr = std::unique_ptr<X509, free_x509>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, free_pkey>;
using file_ptr = std::unique_ptr<std::FILE, close_file>;

std::string fingerprint_of(X509* cert)
{
    EVP_PKEY* key = X509_get0_pubkey(cert);
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

// Opens for writing a file only its owner may read, never through a symlink
// and never over an existing file.
file_ptr create_private(const std::filesystem::path& path, std::string& why)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        why =
            path.string() + ": cannot be created (" + std::generic_category().message(errno) + ")";
        return nullptr;
    }
    file_ptr f(::fdopen(fd, "w"));
    if (!f) {
        ::close(fd);
        why = path.string() + ": cannot be written";
    }
    return f;
}

} // namespace

std::string fingerprint_of_certificate(const std::filesystem::path& cert, std::string& why)
{
    file_ptr f(std::fopen(cert.c_str(), "r"));
    x509_ptr x(f ? PEM_read_X509(f.get(), nullptr, nullptr, nullptr) : nullptr);
    auto fp = x ? fingerprint_of(x.get()) : std::string();
    if (fp.empty())
        why = cert.string() + ": not a PEM certificate";
    return fp;
}

std::string generate_host_key(const std::filesystem::path& directory, const std::string& host_name,
                              std::string& why)
{
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    x509_ptr cert(X509_new());
    if (!key || !cert) {
        why = "OpenSSL could not make an Ed25519 key";
        return {};
    }
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    // The pin is the trust, not the dates: a long life, so no link breaks
    // the day a certificate would have expired.
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 100L * 365 * 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(host_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    if (X509_sign(cert.get(), key.get(), nullptr) == 0) { // Ed25519 takes no digest
        why = "OpenSSL could not sign the certificate";
        return {};
    }
    auto key_file = create_private(directory / "host.key", why);
    if (!key_file)
        return {};
    if (!PEM_write_PrivateKey(key_file.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
        why = "cannot write host.key";
        return {};
    }
    auto cert_file = create_private(directory / "host.pem", why);
    if (!cert_file)
        return {};
    ::fchmod(::fileno(cert_file.get()), 0644); // public: peers pin its key
    if (!PEM_write_X509(cert_file.get(), cert.get()) || std::fflush(cert_file.get()) != 0 ||
        std::fflush(key_file.get()) != 0) {
        why = "cannot write host.pem";
        return {};
    }
    return fingerprint_of(cert.get());
}

boost::asio::ssl::context make_link_context(const std::filesystem::path& cert,
                                            const std::filesystem::path& key,
                                            fingerprint_check pinned)
{
    namespace ssl = boost::asio::ssl;
    ssl::context ctx(ssl::context::tls);
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS); // idle links keep no buffers
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(cert.string(), ec);
    if (ec)
        throw std::runtime_error(cert.string() + ": not a usable certificate (" + ec.message() +
                                 ")");
    ctx.use_private_key_file(key.string(), ssl::context::pem, ec);
    if (ec || SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error(key.string() + ": not the key of " + cert.string());
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // No CA vouches for a host: its certificate is taken when, and only
    // when, its key is one the peers file pins (OpenSSL's own verdict on a
    // self-signed certificate is beside the point).
    ctx.set_verify_callback([pinned = std::move(pinned)](bool, ssl::verify_context& v) {
        X509_STORE_CTX* store = v.native_handle();
        if (X509_STORE_CTX_get_error_depth(store) > 0)
            return true; // a chain above the peer's own certificate: the leaf decides
        X509* leaf = X509_STORE_CTX_get_current_cert(store);
        return leaf && pinned(fingerprint_of(leaf));
    });
    return ctx;
}

std::string peer_fingerprint(SSL* ssl)
{
    x509_ptr cert(SSL_get1_peer_certificate(ssl));
    return cert ? fingerprint_of(cert.get()) : std::string();
}

} // namespace slotbus::bus
