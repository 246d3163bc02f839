// libFuzzer target: a host receiving the domain's datagrams (domain_broadcast)
// and handing their records to its core, as the broadcasts driver does. The
// script mixes honest records, beacons, queries and byes of three senders
// (one signing with another key, one restarting, earlier or later), copies of
// datagrams already sent, changed bytes, garbage and time passing. Invariants:
// - the decoder returns a verdict for any bytes; what decodes encodes back to
//   the same bytes;
// - no record is taken twice (within the ten minutes a forgotten host is
//   remembered, and until a forged datagram was taken), and each sender's
//   are taken in order;
// - the losses told for a name never exceed the records of it not taken;
// - the core's readers get exactly the records taken, with no slot left after.
#include "script.hpp"

#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "core/core.hpp"
#include "host/broadcast.hpp"
#include "transport/udp/datagram.hpp"

using namespace slotbus;
using namespace slotbus::bus;
using fuzz::check;

namespace {

const std::string good_hex(64, 'a');
const std::string other_hex(64, 'b');

domain_key key_of(const std::string& hex)
{
    std::string why;
    return *domain_key::parse(hex, why);
}

struct sender {
    std::string name;
    std::uint64_t epoch;
    bool other_key = false;
    std::unique_ptr<domain_broadcast> state;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz::script_reader in{data, size};
    const bool keyed = in.byte() % 2 == 0;
    const auto key = std::make_shared<const domain_key>(key_of(good_hex));
    const auto wrong = std::make_shared<const domain_key>(key_of(other_hex));
    auto settings_of = [&](std::string name, std::uint64_t epoch, bool other_key) {
        broadcast_settings s;
        s.host = std::move(name);
        s.domain = "wg";
        s.epoch = epoch;
        s.interval = std::chrono::milliseconds(1000);
        s.max_hosts = 4;
        s.max_names = 3;
        if (keyed)
            s.key = other_key ? wrong : key;
        return s;
    };
    domain_broadcast receiver(settings_of("self", 50, false));
    std::vector<sender> senders;
    for (const char* name : {"alpha", "beta", "gamma"}) {
        const bool other = std::string(name) == "gamma";
        senders.push_back(
            {name, 100, other, std::make_unique<domain_broadcast>(settings_of(name, 100, other))});
    }
    static const char* names[] = {"x", "X", R"(taxes\sue)", "y"};

    core host(core_limits{});
    std::string why;
    host.set_policy(std::make_shared<const policy>(
        *policy::parse(R"({"rules": [{"domain": "*", "allow": ["write"]}]})", ::geteuid(), why)));
    const auto readers = host.connect({});
    std::uint32_t next_handle = 1;
    for (const char* n : {"x", R"(taxes\sue)", "y"}) {
        byte_buffer frame;
        encode(frame, create_frame{next_handle, next_handle, 0, 0, 1u << 20, 1, n});
        ++next_handle;
        const auto found = decode_frame(frame, 1u << 20);
        host.feed(readers, found.frame);
    }
    const auto wg = host.connect_domain("wg");
    std::map<std::string, std::uint32_t> handles;

    std::vector<byte_buffer> sent;
    std::set<std::tuple<std::string, std::uint64_t, std::uint64_t>> taken; // sender, epoch, seq
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> last;   // epoch, seq taken
    std::map<std::string, std::uint64_t> generated, got, told;             // by sender '\n' name
    std::uint64_t delivered = 0;
    bool forged = false;
    auto now = domain_broadcast::clock::time_point{} + std::chrono::hours(1);
    const auto end_of_memory = now + std::chrono::minutes(9);
    const domain_broadcast::endpoint from(boost::asio::ip::make_address("198.18.0.9"), 47077);

    while (!in.done()) {
        byte_buffer d;
        auto& s = senders[in.byte() % senders.size()];
        const auto op = in.byte() % 9;
        switch (op) {
        case 0: { // an honest record
            const auto* n = names[in.byte() % 4];
            const std::string payload = in.text(40);
            const bool ours = in.byte() % 8 != 0; // else for a domain the receiver is not of
            d = s.state->record(
                ours ? "wg" : "other", n, fold_case(n),
                {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()});
            if (ours && (!s.other_key || !keyed))
                ++generated[s.name + '\n' + fold_case(n)];
            break;
        }
        case 1:
            d = s.state->hello();
            break;
        case 2:
            d = in.byte() % 2 ? s.state->query() : s.state->bye();
            break;
        case 3: // a copy of one sent before
            if (!sent.empty())
                d = sent[in.byte() % sent.size()];
            break;
        case 4: // one sent before, changed
            if (!sent.empty()) {
                d = sent[in.byte() % sent.size()];
                d[in.byte() % d.size()] ^= static_cast<std::uint8_t>(1 + in.byte() % 255);
            }
            break;
        case 5: { // anything
            const auto text = in.text(80);
            d.assign(text.begin(), text.end());
            break;
        }
        case 6: // a restart, later or (a replay's way) earlier
            s.epoch = in.byte() % 2 ? s.epoch + 1 : s.epoch - 1;
            s.state = std::make_unique<domain_broadcast>(settings_of(s.name, s.epoch, s.other_key));
            last.erase(s.name);
            break;
        case 7: // time passes: leases run out (but a forgotten host is still
                // remembered: replays are refused for ten minutes, this many)
            if (const auto step = std::chrono::milliseconds(in.number(2) * 10);
                now + step < end_of_memory)
                now += step;
            for (const auto& gone : receiver.expire(now))
                last.erase(gone);
            break;
        default: // a record a host never sent: a spoofed name, its own
            d = domain_broadcast(settings_of(in.byte() % 2 ? "self" : "alpha", in.number(1), false))
                    .record("wg", "x", "x", {});
            break;
        }
        if (d.empty())
            continue;
        sent.push_back(d);
        datagram decoded;
        if (decode(d, decoded, nullptr) == decode_result::ok) {
            const auto again = encode(decoded, nullptr);
            const bool had_tag = again.size() != d.size();
            check(had_tag || again == d);
            check(!had_tag || std::equal(again.begin() + 8, again.end(), d.begin() + 8));
        }
        const auto t = receiver.take(d, from, in.byte() % 4 == 0, now);
        // A datagram no honest sender sent that was taken: past it, a forger
        // may have made the receiver forget where a sender's numbers were
        // (without a key anyone can; with one, only a host of the domain).
        forged = forged || ((op == 4 || op == 5 || op == 8) &&
                            decode(d, decoded, keyed ? key.get() : nullptr) == decode_result::ok);
        if (t.restarted)
            last.erase(t.host_key);
        if (t.kind == domain_broadcast::taken::what::gone)
            last.erase(t.host_key);
        if (t.kind != domain_broadcast::taken::what::record)
            continue;
        // Taken once, in order.
        datagram r;
        check(decode(d, r, keyed ? key.get() : nullptr) == decode_result::ok);
        const auto who = fold_case(r.host);
        check(taken.insert({who, r.epoch, r.seq}).second || forged);
        if (auto it = last.find(who); it != last.end() && it->second.first == r.epoch)
            check(r.seq > it->second.second || forged);
        last[who] = {r.epoch, r.seq};
        std::error_code ec;
        const auto name = slot_name::parse(t.path, ec);
        check(!ec);
        const auto k = who + '\n' + name.key();
        ++got[k];
        told[k] += t.missed;
        if (!forged) // the records of it not taken bound the losses told
            check(got[k] + told[k] <= generated[k]);
        // To the core, as the driver does.
        auto h = handles.find(k);
        if (h == handles.end()) {
            check(!host.open_inbound(wg, next_handle, t.from->name, name));
            h = handles.emplace(k, next_handle++).first;
        }
        delivered += host.deliver_inbound(wg, h->second, t.payload, t.missed, ec);
        check(!ec);
    }
    // What was delivered reached the readers' slots, and nothing else did.
    const auto stats = host.stats();
    check(stats.at("deliveries").to_number<std::uint64_t>() == delivered);
    host.disconnect(wg);
    host.disconnect(readers);
    check(host.names().size() == 0);
    return 0;
}
