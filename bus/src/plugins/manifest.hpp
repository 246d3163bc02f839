// Plugin manifests: the *.json files in the host's plugins directory that say
// what to run and how to keep it running.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy.hpp"

namespace slotbus::bus {

enum class restart_policy { never, on_failure, always };

std::string_view to_string(restart_policy p) noexcept;

/// One plugin, as its manifest describes it (docs/operator-guide.md lists the fields).
struct plugin_manifest {
    std::string name;                 ///< [a-z0-9][a-z0-9_-]*, unique on the host
    std::filesystem::path file;       ///< the manifest it came from
    std::string description;          ///< for people: what it does
    std::filesystem::path executable; ///< resolved when loaded
    std::vector<std::string> args;
    std::map<std::string, std::string> env; ///< added to the host's environment
    std::filesystem::path cwd;              ///< default: the manifest's directory
    restart_policy restart = restart_policy::on_failure;
    unsigned max_restarts = 5; ///< restarts in a row before the plugin is left failed
    std::chrono::milliseconds backoff_initial{200};
    std::chrono::milliseconds backoff_max{30000};
    std::chrono::milliseconds stop_timeout{5000}; ///< SIGTERM, then SIGKILL after this
    /// What the plugin may do beyond its own subtree (plugins\NAME\**):
    /// least privilege, none unless the manifest says.
    std::shared_ptr<const grant_list> permissions = std::make_shared<const grant_list>();
    /// The manifest's content, normalised: a reload restarts the plugin when it changes.
    std::string fingerprint;
};

/// Why a manifest was not loaded: which file, which field, what is wrong.
struct manifest_error {
    std::filesystem::path file;
    std::string field; ///< empty when the file as a whole is the problem
    std::string what;
    std::size_t line = 0, column = 0; ///< where JSON that does not parse went wrong (from 1)
};

/// Parses and checks one manifest; nullopt with `error` filled when it is invalid.
/// A bare executable name is looked up beside the manifest, then on $PATH.
std::optional<plugin_manifest> parse_manifest(const std::filesystem::path& file,
                                              std::string_view text, manifest_error& error);

/// Every valid `*.json` manifest in `dir`, in file name order (two may name
/// one plugin: the supervisor decides); the invalid ones go to `errors`.
std::vector<plugin_manifest> load_manifests(const std::filesystem::path& dir,
                                            std::vector<manifest_error>& errors);

} // namespace slotbus::bus
