#include "clients.hpp"

#include "host_key.hpp"

#include "slotbus/slot_name.hpp"

#include <boost/json/parse.hpp>

#include <set>
#include <unistd.h>

#include "core/policy.hpp"

namespace slotbus::bus {

namespace json = boost::json;

std::optional<client_keys> parse_clients(std::string_view text, std::string& why)
{
    boost::system::error_code ec;
    const auto doc = json::parse(text, ec);
    const auto* top = ec ? nullptr : doc.if_object();
    const auto* list = top ? top->if_contains("clients") : nullptr;
    if (!list || !list->is_array() || top->size() != 1) {
        why = ec ? "not valid JSON: " + ec.message()
                 : "must be a JSON object with one field, \"clients\": a list of clients";
        return std::nullopt;
    }
    client_keys clients;
    std::set<std::string> names;
    std::size_t n = 0;
    for (const auto& value : list->as_array()) {
        ++n;
        auto fail = [&](const std::string& what) {
            why = "client " + std::to_string(n) + ": " + what;
            return std::nullopt;
        };
        const auto* o = value.if_object();
        if (!o)
            return fail("not a JSON object");
        for (const auto& [key, field] : *o)
            if (key != "name" && key != "fingerprint")
                return fail("unknown field \"" + std::string(key) + "\" (a typo?)");
        const auto* name = o->if_contains("name");
        if (!name || !name->is_string() || !valid_host_name(name->get_string()))
            return fail("\"name\" must be 1 to 63 letters, digits, - and _");
        const auto folded = fold_case(name->get_string());
        if (!names.insert(folded).second)
            return fail("\"" + folded + "\" is listed twice");
        const auto* fp = o->if_contains("fingerprint");
        if (!fp || !fp->is_string() || !valid_fingerprint(fp->get_string()))
            return fail("\"fingerprint\" must be \"sha256:\" and 64 lowercase hex digits (what "
                        "`slotbus keygen` printed for that client's key)");
        if (!clients.emplace(std::string(fp->get_string()), folded).second)
            return fail("its fingerprint is another client's too");
    }
    return clients;
}

std::optional<client_keys> load_clients(const std::filesystem::path& file, std::string& why)
{
    // Whoever may change it may let a key of theirs in under any name.
    const auto text = read_trusted_file(file, ::geteuid(), why);
    if (!text)
        return std::nullopt;
    return parse_clients(*text, why);
}

} // namespace slotbus::bus
