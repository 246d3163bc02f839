#include "datagram.hpp"

#include <boost/endian/conversion.hpp>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include "core/policy.hpp"

namespace slotbus::bus {

namespace {

constexpr std::uint8_t magic[4] = {'S', 'B', 'D', 'G'};
constexpr std::uint16_t flag_signed = 1;
constexpr std::size_t fixed_size = 28;
constexpr std::size_t tag_size = std::tuple_size_v<domain_key::tag>;

class writer {
public:
    explicit writer(byte_buffer& out) : out_(out) {}
    template <class T> void number(T v)
    {
        std::uint8_t b[sizeof(T)];
        boost::endian::endian_store<T, sizeof(T), boost::endian::order::little>(b, v);
        out_.insert(out_.end(), b, b + sizeof(T));
    }
    void bytes(const void* p, std::size_t n)
    {
        const auto* c = static_cast<const std::uint8_t*>(p);
        out_.insert(out_.end(), c, c + n);
    }
    void text8(std::string_view s) // the caller kept it within 255 bytes
    {
        number(static_cast<std::uint8_t>(s.size()));
        bytes(s.data(), s.size());
    }

private:
    byte_buffer& out_;
};

class reader {
public:
    explicit reader(byte_span in) : in_(in) {}
    template <class T> bool number(T& v)
    {
        if (in_.size() - at_ < sizeof(T))
            return false;
        v = boost::endian::endian_load<T, sizeof(T), boost::endian::order::little>(in_.data() +
                                                                                   at_);
        at_ += sizeof(T);
        return true;
    }
    bool span(std::size_t n, byte_span& out)
    {
        if (in_.size() - at_ < n)
            return false;
        out = in_.subspan(at_, n);
        at_ += n;
        return true;
    }
    bool text8(std::string_view& out)
    {
        std::uint8_t n = 0;
        byte_span s;
        if (!number(n) || !span(n, s))
            return false;
        out = {reinterpret_cast<const char*>(s.data()), s.size()};
        return true;
    }
    [[nodiscard]] std::size_t left() const noexcept { return in_.size() - at_; }

private:
    byte_span in_;
    std::size_t at_ = 0;
};

} // namespace

std::optional<domain_key> domain_key::parse(std::string_view hex, std::string& why)
{
    while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back())))
        hex.remove_suffix(1);
    if (hex.size() < 32 || hex.size() > 128 || hex.size() % 2 != 0) {
        why = "must hold 32 to 128 hex digits (16 to 64 bytes), an even number";
        return std::nullopt;
    }
    domain_key key;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        auto digit = [](char c) -> int {
            if (c >= '0' && c <= '9')
                return c - '0';
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        };
        const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            why = "holds something that is not a hex digit";
            return std::nullopt;
        }
        key.secret_.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
    return key;
}

std::optional<domain_key> domain_key::load(const std::filesystem::path& file,
                                           std::uint32_t host_uid, std::string& why)
{
    const auto text = read_trusted_file(file, host_uid, why, true);
    if (!text)
        return std::nullopt;
    return parse(*text, why);
}

bool domain_key::generate(const std::filesystem::path& file, std::string& why)
{
    std::uint8_t secret[32];
    if (::RAND_bytes(secret, sizeof secret) != 1) {
        why = "no random bytes to be had";
        return false;
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (const auto b : secret) {
        hex += digits[b >> 4];
        hex += digits[b & 15];
    }
    hex += '\n';
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        why = file.string() + ": " +
              (errno == EEXIST ? std::string("exists already (a key is never overwritten)")
                               : std::strerror(errno));
        return false;
    }
    const bool written = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size());
    ::close(fd);
    if (!written)
        why = file.string() + ": cannot be written";
    return written;
}

domain_key::tag domain_key::sign(byte_span bytes) const
{
    std::uint8_t full[32];
    unsigned int length = sizeof full;
    ::HMAC(::EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), bytes.data(),
           bytes.size(), full, &length);
    tag t{};
    std::memcpy(t.data(), full, t.size()); // truncated to 128 bits (RFC 2104, section 5)
    return t;
}

byte_buffer encode(const datagram& d, const domain_key* key)
{
    byte_buffer out;
    out.reserve(fixed_size + 3 * 256 + d.payload.size() + 2 + tag_size);
    writer w(out);
    w.bytes(magic, sizeof magic);
    w.number(datagram_version);
    w.number(static_cast<std::uint8_t>(d.kind));
    w.number(static_cast<std::uint16_t>(key ? flag_signed : 0));
    w.number(d.epoch);
    w.number(d.seq);
    w.number(d.name_seq);
    w.text8(d.host);
    w.text8(d.domain);
    switch (d.kind) {
    case datagram_kind::record:
        w.text8(d.path);
        w.number(static_cast<std::uint16_t>(d.payload.size()));
        w.bytes(d.payload.data(), d.payload.size());
        break;
    case datagram_kind::hello:
        w.number(d.link_port);
        w.number(d.lease_ms);
        w.text8(d.fingerprint);
        break;
    case datagram_kind::query:
    case datagram_kind::bye:
        break;
    }
    if (key) {
        const auto t = key->sign(out);
        w.bytes(t.data(), t.size());
    }
    return out;
}

decode_result decode(byte_span bytes, datagram& out, const domain_key* key)
{
    out = {};
    reader r(bytes);
    byte_span head;
    std::uint8_t version = 0, kind = 0;
    std::uint16_t flags = 0;
    if (!r.span(sizeof magic, head) || std::memcmp(head.data(), magic, sizeof magic) != 0 ||
        !r.number(version) || version != datagram_version || !r.number(kind) ||
        kind > static_cast<std::uint8_t>(datagram_kind::bye) || !r.number(flags) ||
        (flags & ~flag_signed) != 0 || !r.number(out.epoch) || !r.number(out.seq) ||
        !r.number(out.name_seq) || !r.text8(out.host) || !r.text8(out.domain))
        return decode_result::malformed;
    out.kind = static_cast<datagram_kind>(kind);
    switch (out.kind) {
    case datagram_kind::record: {
        std::uint16_t size = 0;
        if (!r.text8(out.path) || !r.number(size) || size > max_broadcast_size ||
            !r.span(size, out.payload))
            return decode_result::malformed;
        break;
    }
    case datagram_kind::hello:
        if (!r.number(out.link_port) || !r.number(out.lease_ms) || !r.text8(out.fingerprint))
            return decode_result::malformed;
        break;
    case datagram_kind::query:
    case datagram_kind::bye:
        break;
    }
    const bool has_tag = (flags & flag_signed) != 0;
    if (r.left() != (has_tag ? tag_size : 0))
        return decode_result::malformed;
    if (!key)
        return decode_result::ok;
    if (!has_tag)
        return decode_result::unsigned_;
    const auto signed_part = bytes.first(bytes.size() - tag_size);
    const auto expected = key->sign(signed_part);
    if (CRYPTO_memcmp(expected.data(), bytes.data() + signed_part.size(), tag_size) != 0)
        return decode_result::bad_signature;
    out.signed_by_key = true;
    return decode_result::ok;
}

} // namespace slotbus::bus
