// The commands about slots and records: ls, info, send, tail.
#include "cli.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <fnmatch.h>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace slotbus::cli {

int cmd_ls(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("path", 1);
    std::string path;
    own.add_options()("path", po::value(&path), "list only the slots at or below this path");
    po::variables_map vm;
    if (!parse("ls", "[PATH] [--json]",
               "The tree of slots: queued records, owner and subscriptions of each.", own,
               positional, c, argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask_slots(bus, path);
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    const auto& slots = answer.at("slots").as_array();
    if (slots.empty()) {
        std::cout << (path.empty() ? "no slots\n" : "no slots at or below " + path + "\n");
        return ok;
    }
    // Directories once each, slots below them, indented by depth.
    std::vector<std::vector<std::string>> rows{{"SLOT", "QUEUED", "OWNER", "SUBSCRIBED TO"}};
    std::vector<std::string> shown; // the directory components printed so far
    for (const auto& v : slots) {
        const auto& s = v.as_object();
        std::vector<std::string> parts;
        std::stringstream components(json::value_to<std::string>(s.at("path")));
        for (std::string part; std::getline(components, part, '\\');)
            parts.push_back(part);
        std::size_t common_depth = 0;
        while (common_depth < shown.size() && common_depth + 1 < parts.size() &&
               slotbus::fold_case(shown[common_depth]) == slotbus::fold_case(parts[common_depth]))
            ++common_depth;
        shown.resize(common_depth);
        for (std::size_t d = common_depth; d + 1 < parts.size(); ++d) {
            rows.push_back({std::string(2 * d, ' ') + parts[d] + "\\", "", "", ""});
            shown.push_back(parts[d]);
        }
        std::string patterns;
        for (const auto& p : s.at("subscriptions").as_array())
            patterns += (patterns.empty() ? "" : ", ") + std::string(p.get_string());
        const auto depth = s.at("depth").to_number<std::uint64_t>();
        const auto queued_bytes = s.at("queued_bytes").to_number<std::uint64_t>();
        auto queued = std::to_string(depth) + " (" + bytes_text(queued_bytes) + ")";
        if (const auto held = held_text(v); !held.empty())
            queued += ", " + held;
        if (s.at("slow").as_bool())
            queued += ", slow";
        rows.push_back({std::string(2 * (parts.size() - 1), ' ') + parts.back(), queued,
                        owner_text(s.at("owner")), patterns});
    }
    print_table(rows);
    return ok;
}

json::object const* find_slot(const json::value& answer, const slotbus::slot_name& name)
{
    for (const auto& v : answer.at("slots").as_array())
        if (slotbus::fold_case(v.at("path").as_string()) == name.key())
            return &v.as_object();
    return nullptr;
}

int cmd_info(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("name", 1);
    std::string name_text;
    own.add_options()("name", po::value(&name_text)->required(), "the slot (short form accepted)");
    po::variables_map vm;
    if (!parse("info", "NAME [--json]",
               "One slot: limits, queue, owner, readers, subscriptions and traffic.", own,
               positional, c, argv, vm))
        return ok;
    const auto name = name_argument("info", name_text);
    auto bus = connect(c);
    const auto answer = ask_slots(bus, name.str());
    const auto* slot = find_slot(answer, name);
    if (!slot) {
        std::cerr << "slotbus: no slot " << name.str() << " (error 2)\n";
        return failed;
    }
    if (c.json) {
        std::cout << json_text(*slot) << '\n';
        return ok;
    }
    const auto timeout = slot->at("read_timeout").to_number<std::uint64_t>();
    const auto& next = slot->at("next_size");
    std::vector<std::vector<std::string>> rows{
        {"name:", str(slot->at("name"))},
        {"owner:", owner_text(slot->at("owner"))},
        {"readers:", str(slot->at("readers"))},
        {"queued:", str(slot->at("depth")) + " records, " +
                        bytes_text(slot->at("queued_bytes").to_number<std::uint64_t>())},
        {"next record:", next.is_null() ? "none" : str(next) + " B"},
        {"max record:", slot->at("max_message_size").to_number<std::uint64_t>() == 0
                            ? "any size"
                            : str(slot->at("max_message_size")) + " B"},
        {"read timeout:",
         timeout == slotbus::mailslot_wait_forever ? "forever" : std::to_string(timeout) + " ms"},
        {"budget:", bytes_text(slot->at("byte_budget").to_number<std::uint64_t>()) +
                        ", when full " + str(slot->at("overflow"))},
        {"records in/out:", str(slot->at("records_in")) + " / " + str(slot->at("records_out"))},
        {"bytes in/out:", str(slot->at("bytes_in")) + " / " + str(slot->at("bytes_out"))},
        {"dropped:", str(slot->at("dropped"))},
        {"held writers:", slot->at("held_writers").to_number<std::uint64_t>() == 0
                              ? "none"
                              : str(slot->at("held_writers")) + ", for " +
                                    duration_text(slot->at("held_ms").to_number<std::uint64_t>())},
        {"slow:", std::string(slot->at("slow").as_bool() ? "yes" : "no") + " (marked " +
                      counted(slot->at("slow_marks").to_number<std::uint64_t>(), "time", "times") +
                      ")"},
    };
    for (const auto& p : slot->at("subscriptions").as_array())
        rows.push_back({"subscribed to:", std::string(p.get_string())});
    print_table(rows);
    return ok;
}

/// A name whose writes are broadcasts: `\\*\...`, or `\\NAME\...` where NAME
/// is the host's domain or one its broadcasts heard of.
bool broadcast_domain(slotbus::connection& bus, const slotbus::slot_name& name)
{
    if (name.scope() == slotbus::name_scope::broadcast)
        return true;
    if (name.scope() != slotbus::name_scope::remote)
        return false;
    // Only to word the summary: one who may send but not list is not told.
    std::error_code ec;
    const auto answer = slotbus::admin(bus, "hosts", {}, ec);
    if (ec || !answer.is_object())
        return false;
    const auto* b = answer.as_object().if_contains("broadcast");
    if (!b || !b->is_object())
        return false;
    const auto server = slotbus::fold_case(name.server());
    if (b->at("domain").as_string() == server)
        return true;
    for (const auto& h : b->at("hosts").as_array())
        if (h.at("domain").is_string() && h.at("domain").as_string() == server)
            return true;
    return false;
}

int cmd_send(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("name", 1).add("data", 1);
    std::string name_text, data, type, source = "/cli/slotbus";
    own.add_options()("name", po::value(&name_text)->required(), "the slot or topic")(
        "data", po::value(&data), "the record; without it (or with -), one record per stdin line")(
        "type,t", po::value(&type),
        "wrap each record in a CloudEvents envelope of this type (data: JSON if it parses, "
        "else a string)")("source", po::value(&source)->default_value(source),
                          "the envelope's source, with --type");
    po::variables_map vm;
    if (!parse("send", "NAME [DATA|-] [--type TYPE] [--json]",
               "Writes records to a slot or topic; prints how many slots received them.", own,
               positional, c, argv, vm))
        return ok;
    const auto name = name_argument("send", name_text);
    std::error_code ec;
    auto bus = connect(c);
    auto slot = slotbus::client_slot::open(bus, name.str(), ec);
    if (ec)
        return refused(name.str(), ec);
    auto record_of = [&](const std::string& text) {
        if (type.empty())
            return text;
        boost::system::error_code parse_ec;
        json::value payload = json::parse(text, parse_ec);
        if (parse_ec)
            payload = json::string(text);
        return slotbus::serialize(
            slotbus::make_envelope(source, type, name.path(), std::move(payload)));
    };
    std::uint64_t records = 0, delivered = 0, errors = 0;
    std::error_code first_error;
    auto count = [&](boost::system::error_code e, std::uint32_t n) {
        ++records;
        delivered += n;
        if (e) {
            ++errors;
            if (!first_error)
                first_error = e;
        }
    };
    if (vm.count("data") && data != "-") {
        const auto n = slot.write(boost::asio::buffer(record_of(data)), ec);
        count(ec, n);
    } else {
        // Pipelined: every line is written at once; the results come back in order.
        std::uint64_t lines = 0;
        for (std::string line; std::getline(std::cin, line); ++lines) {
            auto record = std::make_shared<std::string>(record_of(line));
            slot.async_write(boost::asio::buffer(*record),
                             [&, record](boost::system::error_code e, std::uint32_t n) {
                                 count(e, n);
                                 if (records == lines)
                                     bus.stop();
                             });
        }
        if (records < lines)
            bus.run(); // until the last result is in
    }
    if (c.json) {
        std::cout << json_text(json::object{{"records", records},
                                            {"delivered", delivered},
                                            {"failed", errors},
                                            {"error", first_error.value()}})
                  << '\n';
    } else {
        std::cout << "sent " << records << (records == 1 ? " record" : " records") << " to "
                  << name.str() << ": " << delivered
                  << (delivered == 1 ? " delivery" : " deliveries");
        if (broadcast_domain(bus, name))
            std::cout << " on this host (a broadcast: what other hosts took is not known)";
        if (errors)
            std::cout << ", " << errors << " failed (first: " << first_error.message() << ", error "
                      << first_error.value() << ")";
        std::cout << '\n';
    }
    return errors ? failed : ok;
}

int cmd_tail(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("pattern", 1);
    std::string pattern_text, inbox_name, type_glob, source_glob;
    std::uint64_t count = 0, for_ms = 0;
    bool raw = false, pretty = false;
    own.add_options()("pattern", po::value(&pattern_text)->required(),
                      "a topic pattern: events/orders, events/*, events/**")(
        "count,n", po::value(&count), "exit after this many records (of those shown)")(
        "for", po::value(&for_ms), "exit after this many milliseconds")(
        "type,t", po::value(&type_glob),
        "only envelopes whose type matches, e.g. orders.* (shell wildcards)")(
        "source,s", po::value(&source_glob),
        "only envelopes whose source matches, e.g. /plugins/orders*")(
        "raw", po::bool_switch(&raw), "print each record's bytes as they are, one per line")(
        "pretty", po::bool_switch(&pretty), "print each envelope as indented JSON")(
        "inbox", po::value(&inbox_name),
        "the temporary slot's name (default slotbus/cli/tail-PID, which only the host's uid "
        "may create)");
    po::variables_map vm;
    if (!parse("tail",
               "PATTERN [--type GLOB] [--source GLOB] [--raw|--pretty] [--count N] [--for MS] "
               "[--json]",
               "Prints records as they arrive on topics matching PATTERN (through a temporary\n"
               "slot that drops its oldest records rather than slow the bus down). Envelopes\n"
               "print as `time subject type source data`, anything else as a quoted string.",
               own, positional, c, argv, vm))
        return ok;
    if (raw + pretty + c.json > 1)
        throw usage_error("tail: --raw, --pretty and --json are one or the other");
    const bool filtered = !type_glob.empty() || !source_glob.empty();
    if (raw && filtered)
        throw usage_error("tail: --raw prints records unparsed; --type and --source need "
                          "envelopes");
    auto matches = [](const std::string& glob, const std::string& text) {
        return glob.empty() || ::fnmatch(glob.c_str(), text.c_str(), 0) == 0;
    };
    std::error_code ec;
    const auto pattern = slotbus::topic_pattern::parse(pattern_text, ec);
    if (ec)
        throw usage_error("tail: " + pattern_text + ": " + ec.message());
    auto bus = connect(c);
    slotbus::slot_options options;
    options.read_timeout = 200;
    options.overflow = slotbus::overflow_policy::drop_oldest;
    if (inbox_name.empty())
        inbox_name = "slotbus/cli/tail-" + std::to_string(::getpid());
    auto inbox = slotbus::server_slot::create(bus, inbox_name, options, ec);
    auto subscription = ec ? slotbus::subscription{} : inbox.subscribe(pattern.str(), ec);
    if (ec)
        return refused("tail " + pattern.str(), ec);
    std::cerr << "slotbus: tailing " << pattern.str() << '\n';
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(for_ms);
    std::uint64_t seen = 0;
    while (count == 0 || seen < count) {
        if (for_ms && std::chrono::steady_clock::now() >= until)
            return count ? timed_out : ok;
        auto record = inbox.read_record(ec);
        if (ec == slotbus::error::sem_timeout)
            continue;
        if (ec)
            return refused("tail", ec);
        if (record.missed_before && !c.json && !raw)
            std::cout << "... "
                      << counted(record.missed_before, "record dropped", "records dropped")
                      << " (tail too slow)\n";
        if (raw) {
            ++seen;
            std::cout << record.data << std::endl;
            continue;
        }
        std::error_code envelope_ec;
        const auto e = slotbus::parse_envelope(record.data, envelope_ec);
        if (filtered &&
            (envelope_ec || !matches(type_glob, e.type) || !matches(source_glob, e.source)))
            continue; // not one asked for
        ++seen;
        if (pretty && !envelope_ec) {
            std::cout << pretty_json(json::parse(record.data)) << std::endl;
        } else if (c.json) {
            json::object line;
            if (!envelope_ec)
                line = json::parse(record.data).as_object();
            else
                line["raw"] = record.data;
            if (record.missed_before)
                line["slotbus_missed_before"] = record.missed_before;
            std::cout << json_text(line) << std::endl;
        } else if (!envelope_ec) {
            std::cout << e.time << "  " << e.subject << "  " << e.type << "  " << e.source << "  "
                      << json_text(e.data) << std::endl;
        } else {
            std::cout << "(" << record.data.size() << " bytes, not an envelope) "
                      << json::serialize(json::string(record.data)) << std::endl;
        }
    }
    return ok;
}

} // namespace slotbus::cli
