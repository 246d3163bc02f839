// A real slotbusd for one test: a unique socket, a wait for its "ready" line
// under a deadline, its log shown when the test fails, a polite then firm stop.
#pragma once

#include "child.hpp"

#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace slotbus::test {

class host {
public:
    explicit host(const std::vector<std::string>& extra_args = {});
    /// Started through `launcher` (e.g. {"ip", "netns", "exec", "ns1"}), which execs slotbusd.
    host(const std::vector<std::string>& extra_args, const std::vector<std::string>& launcher);
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

/// What one run of the `slotbus` CLI did.
struct cli_result {
    int code = -1;
    std::string out, err;
    /// stdout parsed as JSON (a failed check when it is not).
    [[nodiscard]] boost::json::value json() const;
};

/// Runs `slotbus ARGS` against `h` (through $SLOTBUS_ADDRESS), under a deadline.
cli_result cli(const host& h, const std::vector<std::string>& args,
               std::chrono::milliseconds deadline = 20s);

/// The plugin's entry in `slotbus plugins --json` against `h`, or null.
boost::json::value plugin_entry(const host& h, const std::string& name);

/// Checks `done` every few milliseconds until it holds or the deadline passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds deadline = 10s);

/// Under a sanitizer a host's memory and descriptors are the sanitizer's as
/// much as its own: a test that measures them says so and skips that part
/// (the plain build, run first by scripts/test.sh, checks it).
inline bool measuring_under_a_sanitizer()
{
#ifdef SLOTBUS_SANITIZED
    BOOST_TEST_MESSAGE("not measured under a sanitizer: the host's memory or descriptors");
    return true;
#else
    return false;
#endif
}

/// True while a process of that pid exists (a zombie counts as gone).
bool alive(int pid);

/// Writes a plugin manifest `NAME.json` into `dir`.
void write_manifest(const std::filesystem::path& dir, const std::string& name,
                    const std::string& json);

} // namespace slotbus::test
