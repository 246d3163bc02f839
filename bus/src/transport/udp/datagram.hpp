// The broadcast datagram (`\\DOMAIN\mailslot\x`, `\\*\mailslot\x`, and the
// hosts' beacons): one UDP datagram per record, never fragmented, decoded as
// untrusted bytes. Little-endian:
//
//   "SBDG" | u8 version | u8 kind | u16 flags | u64 epoch | u64 seq | u32 name_seq
//   | u8 len + host | u8 len + domain
//   | record: u8 len + path | u16 len + payload (<= 424)
//   | hello:  u16 link port | u32 lease ms | u8 len + fingerprint
//   | query, bye: nothing
//   | [16-byte tag: HMAC-SHA-256 of everything before it, with the domain key]
//
// docs/protocol.md, "Broadcast datagrams", says what each field means.
#pragma once

#include "slotbus/protocol.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slotbus::bus {

enum class datagram_kind : std::uint8_t {
    record = 0, ///< one record for the slots of a name on the domain's hosts
    hello = 1,  ///< a host announces itself (a hint: never an identity)
    query = 2,  ///< a starting host asks the others to announce themselves
    bye = 3,    ///< a host stops
};

inline constexpr std::uint8_t datagram_version = 1;
/// What a receiver reads at most: no valid datagram is longer (the fixed
/// part, three strings of at most 255 bytes, the payload and the tag). A
/// record's (host and domain names of 63 bytes at most, a path of 246) stays
/// under 850 bytes: below the 1232 an IPv6 link carries unfragmented.
inline constexpr std::size_t max_datagram_size = 28 + 3 * 256 + 2 + max_broadcast_size + 16;

struct datagram {
    datagram_kind kind = datagram_kind::record;
    std::uint64_t epoch =
        0; ///< the sender's boot (its start time in ns): a restart counts from 1 again
    std::uint64_t seq = 0;        ///< record: its number; hello: the last record's
    std::uint32_t name_seq = 0;   ///< record: its number among the sender's to this domain and name
    std::string_view host;        ///< the sender's name, as it says
    std::string_view domain;      ///< record: where it goes; others: the sender's domain
    std::string_view path;        ///< record: the slot path, `taxes\sue`
    byte_span payload;            ///< record
    std::uint16_t link_port = 0;  ///< hello: where its links are accepted (0: none)
    std::uint32_t lease_ms = 0;   ///< hello: forget the host after this long without a datagram
    std::string_view fingerprint; ///< hello: the link key it claims (checked only by a link)
    bool signed_by_key = false;   ///< decode: it carried a tag that the key verified
};

/// A shared secret of the hosts of a domain: datagrams are signed with it
/// and, where a host has one, unsigned or wrongly signed ones are dropped.
class domain_key {
public:
    /// The file holds 32 to 128 hex digits (16 to 64 bytes; `slotbus keygen
    /// --domain-key` makes one). It must be the host's uid's or root's and
    /// readable by its owner only; nullopt with `why` otherwise.
    static std::optional<domain_key> load(const std::filesystem::path& file, std::uint32_t host_uid,
                                          std::string& why);
    static std::optional<domain_key> parse(std::string_view hex, std::string& why);
    /// Writes a new key of 32 random bytes (the kernel's CSPRNG) to `file`,
    /// mode 0600; never over an existing file. False with `why`.
    static bool generate(const std::filesystem::path& file, std::string& why);

    using tag = std::array<std::uint8_t, 16>;
    [[nodiscard]] tag sign(byte_span bytes) const;

private:
    std::vector<std::uint8_t> secret_;
};

/// A datagram's bytes, signed when `key` is given. The caller keeps the
/// fields within their limits (names of at most 255 bytes, a payload of at
/// most 424); encode does not check them again.
byte_buffer encode(const datagram& d, const domain_key* key);

enum class decode_result {
    ok,
    malformed,     ///< not a datagram of this version, or its lengths lie
    unsigned_,     ///< the receiver has a key and the datagram carries no tag
    bad_signature, ///< its tag is not the receiver's key's
};

/// Reads untrusted bytes; the views in `out` point into `bytes`. Without a
/// key a tag is not checked (such a host authenticates nothing).
decode_result decode(byte_span bytes, datagram& out, const domain_key* key);

} // namespace slotbus::bus
