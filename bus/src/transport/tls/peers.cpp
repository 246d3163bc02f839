#include "peers.hpp"

#include "host_key.hpp"

#include "slotbus/slot_name.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <set>
#include <unistd.h>

#include "core/policy.hpp"

namespace slotbus::bus {

namespace json = boost::json;

bool split_address(std::string_view address, std::string& host, std::string& port)
{
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size())
        return false;
    host = std::string(address.substr(0, colon));
    port = std::string(address.substr(colon + 1));
    if (host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return !host.empty() &&
           std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
           port.size() <= 5;
}

std::optional<std::vector<peer_config>> parse_peers(std::string_view text, const std::string& self,
                                                    std::string& why)
{
    boost::system::error_code ec;
    const auto doc = json::parse(text, ec);
    const auto* top = ec ? nullptr : doc.if_object();
    const auto* list = top ? top->if_contains("peers") : nullptr;
    if (!list || !list->is_array() || top->size() != 1) {
        why = ec ? "not valid JSON: " + ec.message()
                 : "must be a JSON object with one field, \"peers\": a list of hosts";
        return std::nullopt;
    }
    std::vector<peer_config> peers;
    std::set<std::string> names, keys;
    std::size_t n = 0;
    for (const auto& value : list->as_array()) {
        ++n;
        auto fail = [&](const std::string& what) {
            why = "peer " + std::to_string(n) + ": " + what;
            return std::nullopt;
        };
        const auto* o = value.if_object();
        if (!o)
            return fail("not a JSON object");
        for (const auto& [key, field] : *o)
            if (key != "host" && key != "address" && key != "fingerprint")
                return fail("unknown field \"" + std::string(key) + "\" (a typo?)");
        peer_config p;
        const auto* host = o->if_contains("host");
        if (!host || !host->is_string() || !valid_host_name(host->get_string()))
            return fail("\"host\" must be its name: 1 to 63 letters, digits, - and _");
        p.host = fold_case(host->get_string());
        if (p.host == fold_case(self))
            return fail("\"" + p.host + "\" is this host's own name");
        if (!names.insert(p.host).second)
            return fail("\"" + p.host + "\" is listed twice");
        if (const auto* address = o->if_contains("address")) {
            std::string h, port;
            if (!address->is_string() || !split_address(address->get_string(), h, port))
                return fail("\"address\" must be HOST:PORT");
            p.address = std::string(address->get_string());
        }
        const auto* fp = o->if_contains("fingerprint");
        if (!fp || !fp->is_string() || !valid_fingerprint(fp->get_string()))
            return fail("\"fingerprint\" must be \"sha256:\" and 64 lowercase hex digits (what "
                        "`slotbus keygen` printed for that host)");
        p.fingerprint = std::string(fp->get_string());
        if (!keys.insert(p.fingerprint).second)
            return fail("its fingerprint is another peer's too");
        peers.push_back(std::move(p));
    }
    return peers;
}

std::optional<std::vector<peer_config>> load_peers(const std::filesystem::path& file,
                                                   const std::string& self, std::string& why)
{
    // Whoever may change it may pin a key of theirs as a peer's.
    const auto text = read_trusted_file(file, ::geteuid(), why);
    if (!text)
        return std::nullopt;
    return parse_peers(*text, self, why);
}

} // namespace slotbus::bus
