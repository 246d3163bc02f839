// The commands that ask and answer, like `nats req` and `nats reply`: req
// sends one request envelope and prints the reply; reply answers requests.
#include "cli.hpp"

#include <boost/json/parse.hpp>

#include <iostream>

namespace slotbus::cli {

namespace {

/// A command-line DATA as event data: JSON if it parses, else a string.
json::value data_of(const std::string& text)
{
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    return ec ? json::value(json::string(text)) : v;
}

} // namespace

int cmd_req(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("name", 1).add("data", 1);
    std::string name_text, data = "null", type = "slotbus.request";
    std::uint64_t timeout_ms = 1000;
    own.add_options()("name", po::value(&name_text)->required(), "the service's slot or topic")(
        "data", po::value(&data), "the request's data: JSON if it parses, else a string")(
        "type,t", po::value(&type)->default_value(type), "the request's CloudEvents type")(
        "timeout", po::value(&timeout_ms)->default_value(timeout_ms),
        "milliseconds to wait for the reply");
    po::variables_map vm;
    if (!parse("req", "NAME [DATA] [--type TYPE] [--timeout MS] [--json]",
               "Sends one request envelope to NAME and prints the reply's data (--json: the\n"
               "whole reply). Fails at once when nothing receives NAME, with error 121 when no\n"
               "reply comes in time.",
               own, positional, c, argv, vm))
        return ok;
    const auto name = name_argument("req", name_text);
    auto bus = connect(c);
    slotbus::requester ask(bus, "slotbus");
    std::error_code ec;
    const auto reply =
        ask.request(name.str(), type, data_of(data), std::chrono::milliseconds(timeout_ms), ec);
    if (ec == slotbus::error::file_not_found) {
        std::cerr << "slotbus: req " << name.str() << ": nothing receives it (error 2)\n";
        return failed;
    }
    if (ec == slotbus::error::sem_timeout) {
        std::cerr << "slotbus: req " << name.str() << ": no reply within " << timeout_ms
                  << " ms (error 121)\n";
        return failed;
    }
    if (ec)
        return refused("req " + name.str(), ec);
    std::cout << (c.json ? json_text(json::parse(slotbus::serialize(reply)))
                         : json_text(reply.data))
              << '\n';
    return ok;
}

int cmd_reply(common& c, std::vector<std::string>& argv)
{
    po::options_description own("Options");
    po::positional_options_description positional;
    positional.add("name", 1).add("data", 1);
    std::string name_text, data, type;
    std::uint64_t count = 0;
    own.add_options()("name", po::value(&name_text)->required(), "the slot to create and serve")(
        "data", po::value(&data),
        "the reply's data: JSON if it parses, else a string (none: echo the request's data)")(
        "type,t", po::value(&type), "the reply's type (none: the request's)")(
        "count,n", po::value(&count), "exit after answering this many requests");
    po::variables_map vm;
    if (!parse("reply", "NAME [DATA] [--type TYPE] [--count N] [--json]",
               "Creates the slot NAME and answers each request envelope that reaches it with\n"
               "DATA, or with the request's own data. Prints each request as it comes\n"
               "(`type source data`; --json: the whole envelope). Until ^C.",
               own, positional, c, argv, vm))
        return ok;
    const auto name = name_argument("reply", name_text);
    auto bus = connect(c);
    std::error_code ec;
    auto inbox = slotbus::server_slot::create(bus, name.str(), slotbus::slot_options{}, ec);
    if (ec)
        return refused("reply " + name.str(), ec);
    slotbus::publisher out(bus, "slotbus");
    const auto answer = vm.count("data") ? std::optional(data_of(data)) : std::nullopt;
    std::cerr << "slotbus: answering requests on " << name.str() << '\n';
    for (std::uint64_t answered = 0; count == 0 || answered < count;) {
        auto record = inbox.read_record(ec);
        if (ec)
            return refused("reply", ec);
        std::error_code parse_ec;
        std::string why;
        const auto request = slotbus::parse_envelope(record.data, parse_ec, &why);
        if (parse_ec) {
            std::cerr << "slotbus: reply: a record that is not an envelope (" << why
                      << "); not answered\n";
            continue;
        }
        if (c.json)
            std::cout << json_text(json::parse(record.data)) << std::endl;
        else
            std::cout << request.type << "  " << request.source << "  " << json_text(request.data)
                      << std::endl;
        if (request.replyto.empty()) {
            std::cerr << "slotbus: reply: " << request.type
                      << " has no replyto (an event, not a request); not answered\n";
            continue;
        }
        auto e = slotbus::make_envelope(out.source(), type.empty() ? request.type : type,
                                        slotbus::publisher::subject_of(request.replyto),
                                        answer ? *answer : request.data);
        e.correlationid = request.id;
        std::error_code reply_ec;
        if (out.publish(request.replyto, e, reply_ec) == 0 || reply_ec)
            std::cerr << "slotbus: reply: the requester's slot " << request.replyto
                      << " is gone; the reply is lost\n";
        ++answered;
    }
    return ok;
}

} // namespace slotbus::cli
