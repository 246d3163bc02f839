// Who wrote a record, as the host decided it, and the name it was written
// to: kept with each queued record, told to each reader once per connection.
#pragma once

#include <boost/intrusive_ptr.hpp>

#include <cstdint>
#include <string>

namespace slotbus::bus {

/// One writer handle's stamp. The count is not atomic: origins live on the
/// routing core's single thread; each queued record holds one reference.
struct origin {
    std::uint32_t uid = 0;
    std::uint32_t pid = 0;
    std::string plugin; ///< empty for a writer that is no plugin
    std::string name;   ///< the path written to, as the writer spelled it
    std::string host;   ///< the peer host it came from over a link; empty: this host
    std::string client; ///< the TLS client that wrote it (its key's name); empty: none
    /// The domain whose broadcast brought it; then `host` is the sending
    /// host as its datagram names itself (a claim), and uid nobody's.
    std::string domain;
    std::uint32_t refs = 0;

    friend void intrusive_ptr_add_ref(origin* o) noexcept { ++o->refs; }
    friend void intrusive_ptr_release(origin* o) noexcept
    {
        if (--o->refs == 0)
            delete o;
    }
};
using origin_ptr = boost::intrusive_ptr<origin>;

} // namespace slotbus::bus
