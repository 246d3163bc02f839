// The commands about the host itself: stats, policy, hosts, keygen, stop.
#include "cli.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <thread>
#include <unistd.h>

#include "transport/tls/host_key.hpp"
#include "transport/udp/datagram.hpp"

namespace slotbus::cli {

using namespace std::chrono_literals;

namespace {

/// `stats --watch`: one line per interval of the host's rates (differences
/// of its totals, over its own clock), as vmstat does.
int watch_stats(common& c, slotbus::connection& bus, std::uint64_t interval_ms,
                std::uint64_t samples)
{
    json::object before = ask(bus, "stats", R"({"top":0})").as_object();
    const std::vector<std::pair<const char*, const char*>> rates{
        {"records_in", "IN/S"},       {"records_out", "OUT/S"},       {"bytes_in", "BYTES IN/S"},
        {"bytes_out", "BYTES OUT/S"}, {"deliveries", "DELIVERIES/S"}, {"dropped", "DROPPED/S"},
        {"unrouted", "UNROUTED/S"}};
    const std::vector<std::pair<const char*, const char*>> levels{
        {"depth", "DEPTH"}, {"held_writers", "HELD"}, {"connections", "CONNECTIONS"}};
    std::vector<std::size_t> width;
    if (!c.json) {
        std::string header = "TIME    ";
        for (const auto& [key, title] : rates) {
            width.push_back(std::max<std::size_t>(std::strlen(title), 8));
            header += "  " + std::string(width.back() - std::strlen(title), ' ') + title;
        }
        for (const auto& [key, title] : levels) {
            width.push_back(std::max<std::size_t>(std::strlen(title), 6));
            header += "  " + std::string(width.back() - std::strlen(title), ' ') + title;
        }
        std::cout << header << std::endl;
    }
    for (std::uint64_t n = 0; samples == 0 || n < samples; ++n) {
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
        json::object now = ask(bus, "stats", R"({"top":0})").as_object();
        const auto elapsed_ms =
            std::max<double>(1.0, now.at("uptime_ms").to_number<double>() -
                                      before.at("uptime_ms").to_number<double>());
        auto rate = [&](const char* key) {
            const auto a = before.at(key).to_number<std::uint64_t>();
            const auto b = now.at(key).to_number<std::uint64_t>();
            return b >= a ? static_cast<std::uint64_t>(
                                static_cast<double>(b - a) * 1000.0 / elapsed_ms + 0.5)
                          : 0;
        };
        if (c.json) {
            json::object line{{"at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()},
                              {"interval_ms", elapsed_ms}};
            for (const auto& [key, title] : rates)
                line[std::string(key) + "_per_s"] = rate(key);
            for (const auto& [key, title] : levels)
                line[key] = now.at(key);
            std::cout << json_text(line) << std::endl;
        } else {
            const auto t = std::time(nullptr);
            std::tm local{};
            ::localtime_r(&t, &local);
            char clock[16];
            std::strftime(clock, sizeof clock, "%H:%M:%S", &local);
            std::string row = clock;
            std::size_t i = 0;
            auto cell = [&](const std::string& text) {
                row += "  " +
                       std::string(width[i] > text.size() ? width[i] - text.size() : 0, ' ') + text;
                ++i;
            };
            for (const auto& [key, title] : rates)
                cell(std::to_string(rate(key)));
            for (const auto& [key, title] : levels)
                cell(str(now.at(key)));
            std::cout << row << std::endl;
        }
        before = std::move(now);
    }
    return ok;
}

} // namespace

int cmd_stats(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    bool watch = false;
    std::uint64_t interval_ms = 1000, samples = 0;
    own.add_options()("watch,w", po::bool_switch(&watch),
                      "print the host's rates every interval, one line each, until ^C")(
        "interval", po::value(&interval_ms)->default_value(interval_ms),
        "milliseconds between lines, with --watch")("count,n", po::value(&samples),
                                                    "with --watch: stop after this many lines");
    po::variables_map vm;
    if (!parse("stats", "[--watch [--interval MS] [--count N]] [--json]",
               "The host's totals and the traffic of its 100 busiest slots: records and\n"
               "bytes in and out, drops, depth, held writers. With --watch, rates instead:\n"
               "records, bytes, deliveries, drops and unrouted records a second.",
               own, {}, c, argv, vm))
        return ok;
    if (interval_ms < 100 || interval_ms > 3'600'000)
        throw usage_error("stats: --interval must be 100 to 3600000 ms");
    auto bus = connect(c);
    if (watch)
        return watch_stats(c, bus, interval_ms, samples);
    const auto answer = ask(bus, "stats");
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    const auto& s = answer.as_object();
    const auto number = [&](const char* key) { return s.at(key).to_number<std::uint64_t>(); };
    std::cout << "host pid " << str(s.at("pid")) << ", up " << duration_text(number("uptime_ms"))
              << ", " << counted(number("connections"), "connection", "connections") << ", "
              << counted(number("slot_count"), "slot", "slots") << ", "
              << counted(number("plugins_running"), "plugin", "plugins") << " running\n"
              << counted(number("writes"), "write", "writes") << " (" << str(s.at("write_errors"))
              << " failed), " << counted(number("deliveries"), "delivery", "deliveries") << ", "
              << str(s.at("unrouted")) << " unrouted, queued " << str(s.at("depth")) << " ("
              << bytes_text(number("queued_bytes")) << "), "
              << counted(number("held_writers"), "writer", "writers") << " held, rss "
              << bytes_text(number("rss_bytes")) << ", cpu " << str(s.at("cpu_ms")) << " ms\n\n";
    std::vector<std::vector<std::string>> rows{
        {"SLOT", "IN", "OUT", "BYTES IN", "BYTES OUT", "DROPPED", "DEPTH", "HELD"}};
    for (const auto& v : s.at("slots").as_array()) {
        const auto& t = v.as_object();
        const auto held = held_text(v);
        rows.push_back({str(t.at("name")), str(t.at("records_in")), str(t.at("records_out")),
                        str(t.at("bytes_in")), str(t.at("bytes_out")), str(t.at("dropped")),
                        str(t.at("depth")), held.empty() ? "-" : held});
    }
    print_table(rows);
    if (const auto& denied = s.at("denied").as_object(); !denied.empty()) {
        std::vector<std::vector<std::string>> refusals{{"DENIED TO", "RIGHT", "COUNT"}};
        for (const auto& [who, by_right] : denied)
            for (const auto& [r, n] : by_right.as_object())
                refusals.push_back({std::string(who), std::string(r), str(n)});
        std::cout << '\n';
        print_table(refusals);
    }
    return ok;
}

int cmd_policy(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::string verb, name, right_text;
    std::int64_t uid = -1;
    std::string plugin, peer_host, client, domain;
    own.add_options()("verb", po::value(&verb)->required(), "explain")(
        "name", po::value(&name), "a slot name or topic pattern (not for list and admin)")(
        "right", po::value(&right_text), "create, write, read, list or admin")(
        "uid", po::value(&uid), "the uid asked about (its groups as this machine has them)")(
        "plugin", po::value(&plugin), "the plugin asked about (its manifest's permissions)")(
        "host", po::value(&peer_host), "the peer host asked about (writes over a link)")(
        "client", po::value(&client), "the TLS client asked about (its name in --clients)")(
        "domain", po::value(&domain), "the domain whose broadcasts are asked about");
    po::positional_options_description positional;
    positional.add("verb", 1).add("name", 1).add("right", 1);
    po::variables_map vm;
    if (!parse("policy",
               "explain (--uid U | --plugin P | --host H | --client C | --domain D) [NAME] RIGHT "
               "[--json]",
               "Which rule of the host's policy decides whether a uid, a plugin, a peer host,\n"
               "a TLS client or a domain's broadcasts have RIGHT on NAME (a slot name, or a\n"
               "pattern for read), and what it decides.",
               own, positional, c, argv, vm))
        return ok;
    if (verb != "explain")
        throw usage_error("policy: the only verb is explain, not " + verb);
    if (right_text.empty() && (name == "list" || name == "admin"))
        std::swap(name, right_text); // `explain --uid U admin`: no name to ask about
    if (right_text.empty())
        throw usage_error("policy explain: which RIGHT? create, write, read, list or admin");
    if ((uid >= 0) + !plugin.empty() + !peer_host.empty() + !client.empty() + !domain.empty() != 1)
        throw usage_error(
            "policy explain: give one of --uid U, --plugin P, --host H, --client C, --domain D");
    json::object question{{"right", right_text}};
    if (!name.empty())
        question["name"] = name;
    if (uid >= 0)
        question["uid"] = uid;
    else if (!plugin.empty())
        question["plugin"] = plugin;
    else if (!peer_host.empty())
        question["host"] = peer_host;
    else if (!client.empty())
        question["client"] = client;
    else
        question["domain"] = domain;
    auto bus = connect(c);
    const auto answer = ask(bus, "explain", json::serialize(question));
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    const auto& a = answer.as_object();
    std::cout << str(a.at("identity")) << ' ' << (a.at("allowed").as_bool() ? "may" : "may not")
              << ' ' << str(a.at("right"));
    if (!a.at("name").is_null())
        std::cout << ' ' << str(a.at("name"));
    std::cout << ": " << str(a.at("by")) << '\n';
    return a.at("allowed").as_bool() ? ok : failed;
}

int cmd_hosts(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::variables_map vm;
    if (!parse("hosts", "[--json]",
               "This host's peers (--peers) and each link: state, address, the key it "
               "proved, round trip, records and bytes each way, credits, last error. With "
               "--broadcast, the domain's counters and the hosts heard from: domain, address, "
               "lease, records, losses, and the key each claims (verified only where a link "
               "proved it).",
               own, {}, c, argv, vm))
        return ok;
    auto bus = connect(c);
    const auto answer = ask(bus, "hosts");
    if (c.json) {
        std::cout << json_text(answer) << '\n';
        return ok;
    }
    const auto& peers = answer.at("peers").as_array();
    if (answer.at("fingerprint").is_null())
        std::cout << "host " << str(answer.at("host"))
                  << " links with no other host (started without --peers)\n";
    else
        std::cout << "host " << str(answer.at("host")) << ", key " << str(answer.at("fingerprint"))
                  << '\n';
    if (!peers.empty()) {
        std::vector<std::vector<std::string>> rows{
            {"PEER", "STATE", "ADDRESS", "RTT", "OUT", "IN", "IN FLIGHT", "UNKNOWN", "LAST ERROR"}};
        for (const auto& v : peers) {
            const auto& p = v.as_object();
            const auto rtt = p.at("round_trip_us").to_number<std::int64_t>();
            rows.push_back(
                {str(p.at("host")), str(p.at("state")),
                 p.contains("connected_to") ? str(p.at("connected_to")) : str(p.at("address")),
                 rtt ? std::to_string(rtt) + " us" : "-",
                 str(p.at("records_out")) + " / " + str(p.at("bytes_out")) + " B",
                 str(p.at("records_in")) + " / " + str(p.at("bytes_in")) + " B",
                 str(p.at("in_flight")), str(p.at("unknown_outcome")), str(p.at("last_error"))});
        }
        print_table(rows);
    }
    const auto& b = answer.at("broadcast");
    if (b.is_null()) {
        std::cout << "no broadcasts (started without --broadcast): \\\\*\\ names reach this host "
                     "only\n";
        return ok;
    }
    const auto& o = b.as_object();
    std::cout << "broadcasts: domain " << str(o.at("domain")) << " on " << str(o.at("group"))
              << ", ttl " << str(o.at("ttl"))
              << (o.at("signed").as_bool() ? ", signed with the domain key"
                                           : ", not signed (anyone on the link may send)")
              << "\n  sent " << str(o.at("sent")) << ", received " << str(o.at("received"))
              << ", lost " << str(o.at("lost")) << ", duplicates " << str(o.at("duplicates"))
              << ", late " << str(o.at("late")) << "; dropped: " << str(o.at("malformed"))
              << " malformed, " << str(o.at("unsigned")) << " unsigned, "
              << str(o.at("bad_signature")) << " wrongly signed, " << str(o.at("stale"))
              << " stale, " << str(o.at("replayed")) << " replayed, " << str(o.at("other_domain"))
              << " for other domains, " << str(o.at("denied")) << " refused by the policy\n";
    // A beacon's key is a claim; a link that is up proved its peer's.
    auto key_of = [&](const json::object& h) {
        const auto claimed = str(h.at("claimed_fingerprint"));
        for (const auto& v : peers) {
            const auto& p = v.as_object();
            if (p.at("host").as_string() != slotbus::fold_case(str(h.at("host"))) ||
                p.at("state").as_string() != "up")
                continue;
            return claimed == str(p.at("fingerprint"))
                       ? "verified by its link"
                       : "claims " + claimed + ", but its link proved " + str(p.at("fingerprint"));
        }
        return claimed.empty() ? std::string("-") : "claimed " + claimed;
    };
    std::vector<std::vector<std::string>> rows{{"HOST", "DOMAIN", "ADDRESS", "BY", "LEASE",
                                                "RECORDS", "LOST", "DUPLICATES", "LATE", "KEY"}};
    for (const auto& v : o.at("hosts").as_array()) {
        const auto& h = v.as_object();
        rows.push_back(
            {str(h.at("host")), h.at("domain").is_null() ? "?" : str(h.at("domain")),
             str(h.at("address")), str(h.at("by")),
             std::to_string(h.at("lease_left_ms").to_number<std::int64_t>() / 1000) + " s",
             str(h.at("records")), str(h.at("lost")), str(h.at("duplicates")), str(h.at("late")),
             key_of(h)});
    }
    if (rows.size() == 1)
        std::cout << "no other host heard from yet\n";
    else
        print_table(rows);
    return ok;
}

int cmd_keygen(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::string dir, name, domain_key_file;
    own.add_options()(
        "dir", po::value(&dir),
        "where host.key (mode 0600) and host.pem go; an existing key is never overwritten")(
        "name", po::value(&name), "the name in the certificate (default: the hostname)")(
        "domain-key", po::value(&domain_key_file),
        "instead: write a new domain key (32 random bytes in hex, mode 0600) to this file, "
        "for every host of the domain's --broadcast-key");
    po::variables_map vm;
    if (!parse("keygen", "--dir DIR [--name NAME] | --domain-key FILE",
               "Makes this host's link key (Ed25519) and a self-signed certificate, and prints "
               "the fingerprint its peers pin in their --peers file; or a domain's broadcast key.",
               own, {}, c, argv, vm))
        return ok;
    if (dir.empty() == domain_key_file.empty()) {
        std::cerr << "slotbus keygen: give --dir DIR (a host key) or --domain-key FILE\n";
        return usage;
    }
    if (!domain_key_file.empty()) {
        std::string why;
        if (!slotbus::bus::domain_key::generate(domain_key_file, why)) {
            std::cerr << "slotbus keygen: " << why << '\n';
            return failed;
        }
        std::cout << "domain key written to " << domain_key_file
                  << " (copy it to each host of the domain, mode 0600)\n";
        return ok;
    }
    if (name.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        name = host;
    }
    std::string why;
    const auto fp = slotbus::bus::generate_host_key(dir, name, why);
    if (fp.empty()) {
        std::cerr << "slotbus keygen: " << why << '\n';
        return failed;
    }
    if (c.json)
        std::cout << json_text(json::object{{"fingerprint", fp}, {"dir", dir}}) << '\n';
    else
        std::cout << fp << '\n';
    return ok;
}

int cmd_stop(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    std::uint64_t wait_ms = 30000;
    own.add_options()("wait", po::value(&wait_ms)->default_value(wait_ms),
                      "milliseconds to wait for the host (and its plugins) to be gone");
    po::variables_map vm;
    if (!parse("stop", "[--wait MS]",
               "Stops the host gracefully: its plugins first, then the bus. Returns once it\n"
               "is gone.",
               own, {}, c, argv, vm))
        return ok;
    {
        auto bus = connect(c);
        std::error_code ec;
        slotbus::admin(bus, "stop", {}, ec); // the host may close before its answer arrives
        if (ec && ec != slotbus::error::broken_pipe) {
            std::cerr << "slotbus: stop: " << ec.message() << '\n';
            return failed;
        }
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (std::chrono::steady_clock::now() < until) {
        slotbus::connection probe(slotbus::connection_options{"slotbus-cli", 1, ""});
        std::error_code ec;
        probe.connect(c.address, ec);
        if (ec) {
            if (c.json)
                std::cout << R"({"stopped":true})" << '\n';
            else
                std::cout << "stopped the host on " << slotbus::socket_path_of(c.address) << '\n';
            return ok;
        }
        std::this_thread::sleep_for(50ms);
    }
    std::cerr << "slotbus: the host is still running after " << wait_ms << " ms\n";
    return failed;
}

} // namespace slotbus::cli
