// Hosts on a LAN of their own, for tests: network namespaces joined by a
// bridge (198.18.0.0/24, multicast snooping off, a multicast route in each),
// made and removed by the test, and their keys.
// Needs root and `ip netns` (CI runs as root); without them `made` is false
// and the test says it skips.
#pragma once

#include "host_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace slotbus::test {

inline int sh(const std::string& command)
{
    return std::system((command + " >/dev/null 2>&1").c_str());
}

// Hosts on one L2 segment; the bridge in a namespace of its own, so
// the machine's own firewall never sees the traffic.
struct lan {
    std::string tag = std::to_string(::getpid() % 100000);
    std::string ns(char h) const { return "sb" + std::string(1, h) + tag; }
    std::string veth(char h) const { return "sv" + std::string(1, h) + tag; }
    std::string ip(char h) const { return "198.18.0." + std::to_string(h - 'A' + 1); }
    bool made = false;

    lan()
    {
        if (::geteuid() != 0 || sh("ip netns list") != 0)
            return;
        remove(); // what a crashed run of the same pid left
        bool ok = sh("ip netns add " + ns('R')) == 0 &&
                  sh("ip -n " + ns('R') + " link add br0 type bridge mcast_snooping 0") == 0 &&
                  sh("ip -n " + ns('R') + " link set br0 up") == 0;
        for (char h : {'A', 'B', 'C'}) {
            const auto port = "sp" + std::string(1, h) + tag;
            ok = ok && sh("ip netns add " + ns(h)) == 0 &&
                 sh("ip link add " + veth(h) + " type veth peer name " + port) == 0 &&
                 sh("ip link set " + veth(h) + " netns " + ns(h)) == 0 &&
                 sh("ip link set " + port + " netns " + ns('R')) == 0 &&
                 sh("ip -n " + ns('R') + " link set " + port + " master br0") == 0 &&
                 sh("ip -n " + ns('R') + " link set " + port + " up") == 0 &&
                 sh("ip -n " + ns(h) + " addr add " + ip(h) + "/24 dev " + veth(h)) == 0 &&
                 sh("ip -n " + ns(h) + " link set lo up") == 0 &&
                 sh("ip -n " + ns(h) + " link set " + veth(h) + " up") == 0 &&
                 // A fresh namespace has no default route: multicast needs one of its own.
                 sh("ip -n " + ns(h) + " route add 224.0.0.0/4 dev " + veth(h)) == 0;
        }
        made = ok;
        if (!ok)
            remove();
    }
    ~lan() { remove(); }
    void remove() const
    {
        for (char h : {'A', 'B', 'C', 'R'}) // the veths go with their namespaces
            sh("ip netns del " + ns(h));
    }
    [[nodiscard]] std::vector<std::string> in(char h) const
    {
        return {"/usr/sbin/ip", "netns", "exec", ns(h)};
    }
    /// The bridge's port to host h (for nftables rules on the bridge).
    [[nodiscard]] std::string port(char h) const { return "sp" + std::string(1, h) + tag; }
    /// Loads nftables rules into the bridge's namespace (loss, duplicates).
    void nft(const std::string& rules) const
    {
        const auto file = std::filesystem::temp_directory_path() / ("sb-nft-" + tag);
        std::ofstream(file) << rules;
        const int code = sh("ip netns exec " + ns('R') + " nft -f " + file.string());
        std::filesystem::remove(file);
        BOOST_REQUIRE_MESSAGE(code == 0, "nft could not load:\n" + rules);
    }
    /// What the named nftables counter rule of the bridge counted: the
    /// packets of the rule whose comment is `comment`.
    [[nodiscard]] long counted(const std::string& comment) const
    {
        FILE* out = ::popen(("ip netns exec " + ns('R') + " nft list ruleset").c_str(), "r");
        BOOST_REQUIRE(out);
        std::string text;
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, out)) > 0;)
            text.append(buffer, n);
        ::pclose(out);
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);)
            if (line.find("\"" + comment + "\"") != std::string::npos)
                if (const auto at = line.find("packets "); at != std::string::npos)
                    return std::stol(line.substr(at + 8));
        return -1;
    }
    void cable(char h, bool up) const
    {
        BOOST_REQUIRE(sh("ip -n " + ns(h) + " link set " + veth(h) + (up ? " up" : " down")) == 0);
    }
};

struct keys {
    temp_dir dir;
    std::map<char, std::string> fingerprint;
    int made = 0;
    keys()
    {
        for (char h : {'A', 'B', 'C'})
            fingerprint[h] = make(std::string(1, h));
    }
    std::string make(const std::string& name)
    {
        child gen(SLOTBUS_CLI_PATH,
                  {"keygen", "--dir", (dir.path / name).string(), "--name", name});
        BOOST_REQUIRE(gen.wait_exit() == 0);
        BOOST_REQUIRE(!gen.lines().empty());
        return gen.lines().front();
    }
    /// Another host's key, above `h`'s: pinned by `h` for a peer, `h` is the
    /// side that dials it (the lower fingerprint dials).
    std::string key_above(char h)
    {
        for (;;)
            if (auto fp = make("extra" + std::to_string(++made)); fp > fingerprint.at(h))
                return fp;
    }
    std::string key_dir(char h) const { return (dir.path / std::string(1, h)).string(); }
};

inline std::string name_of(char h)
{
    return h == 'A' ? "alpha" : h == 'B' ? "beta" : h == 'C' ? "gamma" : "delta";
}

inline void write_file(const std::filesystem::path& path, const std::string& text)
{
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0600);
}

#define NEED_LAN(net)                                                                              \
    if (!(net).made) {                                                                             \
        BOOST_TEST_MESSAGE("skipped: needs root and `ip netns` to make its hosts");                \
        return;                                                                                    \
    }

} // namespace slotbus::test
