// A plugin process the tests script from the command line:
//
//   peer create NAME [--timeout MS] [--max BYTES] [--count N] [--duplicate]
//       create the slot, print "created" (and "token T"), then print each
//       record as "record SIZE DATA"; exit after N records
//       [--subscribe P1,P2] [--budget BYTES] [--overflow drop-oldest|drop-newest]
//       (a gap of N dropped records prints "gap N" before the next record)
//   peer attach TOKEN [--count N]        read through a duplicated handle
//   peer write NAME --count N [--prefix P] [--size BYTES] [--pace US]
//       pipelined writes "P-0", "P-1", ... (padded to BYTES; US apart); print
//       "failed I ERROR" for each that failed, then "acked OK failed F delivered D"
//       when every write has its result
//   peer child-env X   connect (as a plugin, with $SLOTBUS_TOKEN), print
//       "plugin NAME", then what a child shell sees: "child-token=T" or "none"
//   peer try OP...     each of create:NAME, subscribe:PATTERN (the slot last
//       created), write:NAME (open it and write one record, "probe"),
//       send:NAME=DATA (the same, writing DATA), admin:COMMAND
//       in turn, printing "OP ARG ERROR" (0 for success); then "done".
//       A connection the host refuses prints "connect ERROR".
#include <slotbus/slotbus.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

namespace {

std::map<std::string, std::string> flags(int argc, char** argv, int from)
{
    std::map<std::string, std::string> out;
    for (int i = from; i < argc; ++i) {
        std::string key = argv[i];
        if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
            out[key] = argv[++i];
        else
            out[key] = "1";
    }
    return out;
}

// With `senders`, each record is followed by "sender uid U pid P host H client C"
// (and " domain D" for a broadcast's).
int read_loop(slotbus::server_slot& slot, long count, bool senders = false)
{
    for (long n = 0; count < 0 || n < count;) {
        std::error_code ec;
        auto got = slot.read_record(ec);
        auto& [record, missed] = got;
        if (ec == slotbus::error::sem_timeout) {
            std::printf("timeout\n");
            std::fflush(stdout);
            continue;
        }
        if (ec) {
            std::printf("error %d\n", ec.value());
            return 1;
        }
        if (missed)
            std::printf("gap %u\n", missed);
        std::printf("record %zu %s\n", record.size(), record.c_str());
        if (senders)
            std::printf("sender uid %u pid %u host %s client %s%s%s\n", got.sender().uid,
                        got.sender().pid,
                        got.sender().host.empty() ? "-" : got.sender().host.c_str(),
                        got.sender().client.empty() ? "-" : got.sender().client.c_str(),
                        got.sender().domain.empty() ? "" : " domain ", got.sender().domain.c_str());
        std::fflush(stdout);
        ++n;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: peer create|attach|write ARG [flags]\n");
        return 2;
    }
    const std::string command = argv[1], arg = argv[2];
    auto f = flags(argc, argv, 3);
    const long count = f.count("--count") ? std::stol(f["--count"]) : -1;

    if (command == "create" || command == "attach") {
        slotbus::connection bus({"peer", 256});
        bus.connect();
        std::error_code ec;
        slotbus::server_slot slot;
        if (command == "create") {
            const auto timeout = f.count("--timeout")
                                     ? static_cast<std::uint32_t>(std::stoul(f["--timeout"]))
                                     : slotbus::mailslot_wait_forever;
            slotbus::slot_options options;
            options.read_timeout = timeout;
            options.max_message_size =
                f.count("--max") ? static_cast<std::uint32_t>(std::stoul(f["--max"])) : 0u;
            options.byte_budget = f.count("--budget") ? std::stoull(f["--budget"]) : 0;
            if (f["--overflow"] == "drop-oldest")
                options.overflow = slotbus::overflow_policy::drop_oldest;
            else if (f["--overflow"] == "drop-newest")
                options.overflow = slotbus::overflow_policy::drop_newest;
            slot = slotbus::server_slot::create(bus, arg, options, ec);
        } else {
            slot = slotbus::server_slot::attach(bus, arg, ec);
        }
        if (ec) {
            std::printf("error %d\n", ec.value());
            return 1;
        }
        std::vector<slotbus::subscription> subscriptions;
        for (std::string rest = f["--subscribe"]; !ec && !rest.empty();) {
            const auto comma = rest.find(',');
            subscriptions.push_back(slot.subscribe(rest.substr(0, comma), ec));
            rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
        }
        if (ec) {
            std::printf("error %d\n", ec.value());
            return 1;
        }
        std::printf("created\n");
        if (f.count("--duplicate"))
            std::printf("token %s\n", slot.duplicate().c_str());
        std::fflush(stdout);
        return read_loop(slot, count, f.count("--senders") > 0);
    }

    if (command == "write") {
        // Pipelined: the connection lives on a thread of its own; writes are
        // started from here and their results counted as they come back.
        boost::asio::io_context io;
        auto guard = boost::asio::make_work_guard(io);
        std::thread runner([&] { io.run(); });
        int code = 0;
        {
            slotbus::connection bus(io.get_executor(), {"peer-writer", 256});
            std::error_code ec;
            bus.connect(slotbus::default_address(), ec);
            auto slot = ec ? slotbus::client_slot{} : slotbus::client_slot::open(bus, arg, ec);
            if (ec) {
                std::printf("error %d\n", ec.value());
                code = 1;
            } else {
                const std::string prefix = f.count("--prefix") ? f["--prefix"] : "w";
                const std::size_t size = f.count("--size") ? std::stoul(f["--size"]) : 0;
                std::atomic<long> ok{0}, failed{0}, done{0}, delivered{0};
                std::vector<std::string> records;
                for (long i = 0; i < count; ++i) {
                    auto text = prefix + "-" + std::to_string(i);
                    if (text.size() < size)
                        text.resize(size, '.');
                    records.push_back(std::move(text));
                }
                // --pace US: a pause between writes, so a stream of them spans an event.
                const auto pace =
                    std::chrono::microseconds(f.count("--pace") ? std::stol(f["--pace"]) : 0);
                std::vector<int> errors(records.size(), 0);
                for (std::size_t i = 0; i < records.size(); ++i) {
                    slot.async_write(boost::asio::buffer(records[i]),
                                     [&, i](boost::system::error_code e, std::uint32_t n) {
                                         delivered += n;
                                         errors[i] = e.value();
                                         (e ? failed : ok)++;
                                         done++;
                                         done.notify_one();
                                     });
                    if (pace.count() > 0)
                        std::this_thread::sleep_for(pace);
                }
                for (long d = done.load(); d < count; d = done.load())
                    done.wait(d);
                for (std::size_t i = 0; i < errors.size(); ++i) // which failed, and how
                    if (errors[i] != 0)
                        std::printf("failed %zu %d\n", i, errors[i]);
                std::printf("acked %ld failed %ld delivered %ld\n", ok.load(), failed.load(),
                            delivered.load());
            }
        }
        guard.reset();
        runner.join();
        std::fflush(stdout);
        return code;
    }
    if (command == "try") {
        slotbus::connection bus({"peer"});
        std::error_code ec;
        bus.connect(slotbus::default_address(), ec);
        if (ec) {
            std::printf("connect %d\n", ec.value());
            return 1;
        }
        slotbus::server_slot slot;
        std::vector<slotbus::subscription> subscriptions;
        for (int i = 2; i < argc; ++i) {
            const std::string op = argv[i];
            const auto colon = op.find(':');
            const std::string verb = op.substr(0, colon), what = op.substr(colon + 1);
            ec.clear();
            if (verb == "create") {
                auto created = slotbus::server_slot::create(bus, what, {}, ec);
                if (!ec)
                    slot = std::move(created);
            } else if (verb == "subscribe") {
                subscriptions.push_back(slot.subscribe(what, ec));
            } else if (verb == "write" || verb == "send") {
                const auto equals = verb == "send" ? what.find('=') : std::string::npos;
                auto writer = slotbus::client_slot::open(bus, what.substr(0, equals), ec);
                if (!ec)
                    writer.write(equals == std::string::npos ? "probe" : what.substr(equals + 1),
                                 ec);
            } else if (verb == "admin") {
                (void)slotbus::admin(bus, what, {}, ec);
            } else {
                std::fprintf(stderr, "peer try: unknown operation %s\n", op.c_str());
                return 2;
            }
            std::printf("%s %s %d\n", verb.c_str(), what.c_str(), ec.value());
        }
        std::printf("done\n");
        std::fflush(stdout);
        return 0;
    }
    if (command == "child-env") {
        slotbus::connection bus({"peer"});
        bus.connect();
        std::printf("plugin %s\n", bus.plugin_name().c_str());
        std::fflush(stdout);
        return std::system("echo child-token=${SLOTBUS_TOKEN:-none}");
    }
    std::fprintf(stderr, "peer: unknown command %s\n", command.c_str());
    return 2;
}
