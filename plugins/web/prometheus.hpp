// The host's figures in the Prometheus text exposition format (0.0.4).
#pragma once

#include "monitor.hpp"

#include <string>

namespace slotbus::web {

/// Every family of /metrics, from one snapshot: host totals, connections,
/// plugins, links and, for at most `max_slot_series` slots (in tree order),
/// each slot's own series. `fresh`: whether the snapshot is current
/// (slotbus_up).
std::string render_metrics(const snapshot& s, bool fresh, std::size_t max_slot_series);

/// A label value escaped as the format wants (backslash, quote, newline).
std::string escape_label(std::string_view value);

} // namespace slotbus::web
