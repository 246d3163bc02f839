#include "host_key.hpp"

#include "slotbus/detail/tls.hpp"

#include <algorithm>
#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
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
    auto fp = x ? detail::fingerprint_of(x.get()) : std::string();
    if (fp.empty())
        why = cert.string() + ": not a PEM certificate";
    return fp;
}

bool valid_fingerprint(std::string_view text) noexcept
{
    constexpr std::string_view prefix = "sha256:";
    if (!text.starts_with(prefix) || text.size() != prefix.size() + 64)
        return false;
    return std::all_of(text.begin() + prefix.size(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
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
    return detail::fingerprint_of(cert.get());
}

} // namespace slotbus::bus
