// A real slotbusd for one test: a unique socket, a wait for its "ready" line
// under a deadline, its log shown when the test fails, a polite then firm stop.
#pragma once

#include "child.hpp"

#include <memory>
#include <string>
#include <vector>

namespace slotbus::test {

class host {
public:
    explicit host(const std::vector<std::string>& extra_args = {});
    ~host();

    [[nodiscard]] const std::string& socket() const noexcept { return socket_; }
    /// "SLOTBUS_ADDRESS=..." for the environment of a plugin process.
    [[nodiscard]] std::string env() const { return "SLOTBUS_ADDRESS=" + socket_; }
    [[nodiscard]] child& process() noexcept { return *process_; }
    [[nodiscard]] std::string log() const { return process_->stderr_text(); }

private:
    temp_dir dir_;
    std::string socket_;
    std::unique_ptr<child> process_;
};

/// A peer process (tests/support/peer.cpp) talking to `h`.
std::unique_ptr<child> peer(const host& h, const std::vector<std::string>& args);

/// The records a peer printed ("record SIZE DATA" lines), as DATA, in order.
std::vector<std::string> records_of(const child& peer);

} // namespace slotbus::test
