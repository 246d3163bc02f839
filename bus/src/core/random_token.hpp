// Secrets the host hands out (duplicate tokens, plugin tokens): 128 bits from
// the kernel's CSPRNG, so no number of observed tokens predicts the next.
#pragma once

#include <string>

namespace slotbus::bus {

/// 32 hex digits from getrandom(2). Throws std::system_error if the kernel
/// has none to give (never a weaker fallback).
std::string random_token();

} // namespace slotbus::bus
