// Heterogeneous lookup for maps keyed by std::string: find by string_view
// without building a string.
#pragma once

#include <functional>
#include <string_view>

namespace slotbus::bus {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept
    {
        return std::hash<std::string_view>{}(s);
    }
};

} // namespace slotbus::bus
