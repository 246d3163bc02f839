// Lane memory as a memfd (docs/lanes.md): made by the host, sealed against
// shrinking and growing before anyone else sees it, and against any new
// writable mapping once its writer has mapped it.
#pragma once

#include <memory>
#include <system_error>

#include "core/lane.hpp"

namespace slotbus::bus {

/// Lane memory of `size` bytes (a page multiple), or null with ec set.
std::unique_ptr<lane_memory> make_memfd_lane(std::uint64_t size, std::error_code& ec);

/// Whether this kernel can make lanes safe (memfd sealing with
/// F_SEAL_FUTURE_WRITE, Linux 5.1): tried once.
bool memfd_lanes_supported();

} // namespace slotbus::bus
