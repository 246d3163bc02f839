// journal: appends every record on the topics it is given to JSON Lines
// files, rotated by size (plugins/journal/README.md).
#include "journal_file.hpp"

#include "slotbus/slotbus.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>

#include <cstdlib>
#include <iostream>

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

std::filesystem::path default_dir()
{
    if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state)
        return std::filesystem::path(state) / "slotbus" / "journal";
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home ? home : ".") / ".local" / "state" / "slotbus" / "journal";
}

/// One journal line: the record's JSON as written when it is one line
/// already (JSON strings hold no raw line breaks, so only whitespace can), else
/// compacted to one; a record that is not JSON is kept as {"raw": "..."}.
void append_line(std::string& out, const std::string& record)
{
    boost::system::error_code ec;
    const auto value = json::parse(record, ec);
    if (ec)
        out += slotbus::json_text(json::object{{"raw", record}});
    else if (record.find_first_of("\r\n") == std::string::npos)
        out += record; // byte for byte: numbers as the writer wrote them
    else
        out += slotbus::json_text(value);
    out += '\n';
}

class journal_plugin {
public:
    journal_plugin(slotbus::connection& bus, slotbus::server_slot& inbox,
                   slotbus::journal::journal_file& file)
        : bus_(bus), inbox_(inbox), file_(file)
    {
    }

    void read_next()
    {
        inbox_.async_read_batch(1024, [this](boost::system::error_code ec,
                                             std::vector<slotbus::received_record> batch) {
            if (ec) {
                if (ec != boost::asio::error::operation_aborted)
                    std::cerr << "journal: reading: " << ec.message() << std::endl;
                failed_ = ec != boost::asio::error::operation_aborted;
                bus_.stop();
                return;
            }
            write(batch);
            read_next();
        });
    }

    /// At SIGTERM: what the slot holds (the host's count is exact) goes to
    /// the file too, before the slot goes away with this process.
    void drain()
    {
        std::error_code ec;
        auto left = inbox_.info(ec).message_count;
        std::vector<slotbus::received_record> batch;
        while (!ec && left-- > 0) {
            auto record = inbox_.read_record(ec);
            if (!ec)
                batch.push_back(std::move(record));
        }
        write(batch);
    }

    [[nodiscard]] bool failed() const noexcept { return failed_; }

private:
    void write(const std::vector<slotbus::received_record>& batch)
    {
        std::string lines;
        for (const auto& record : batch) {
            if (record.missed_before) // only with a drop policy; never by default
                std::cerr << "journal: " << record.missed_before << " records dropped" << std::endl;
            append_line(lines, record.data);
        }
        file_.append(lines); // one write for the whole batch
    }

    slotbus::connection& bus_;
    slotbus::server_slot& inbox_;
    slotbus::journal::journal_file& file_;
    bool failed_ = false;
};

} // namespace

int main(int argc, char** argv)
{
    slotbus::journal::journal_options options;
    options.dir = default_dir();
    std::vector<std::string> patterns;
    std::string slot_name;
    po::options_description described(
        "journal — a slotbus plugin that keeps every record\n\nOptions");
    // clang-format off
    described.add_options()
        ("help,h", "print this help")
        ("version", "print the version and exit")
        ("pattern,p", po::value(&patterns)->composing(), "a topic pattern to journal (repeatable)")
        ("dir,d", po::value(&options.dir)->default_value(options.dir),
         "where the journal files go")
        ("max-bytes", po::value(&options.max_bytes)->default_value(options.max_bytes),
         "rotate the current file before it would grow past this")
        ("max-files", po::value(&options.max_files)->default_value(options.max_files),
         "rotated files kept (journal.jsonl.1 is the newest)")
        ("sync", po::bool_switch(&options.sync), "fdatasync after every batch")
        ("slot", po::value(&slot_name), "the journal's own slot (default: slotbus/journal/NAME)");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, described), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "journal: " << e.what() << " (--help lists the options)\n";
        return 2;
    }
    if (vm.count("version")) {
        std::cout << "slotbus-journal " << slotbus::version << '\n';
        return 0;
    }
    if (vm.count("help")) {
        std::cout << described << '\n';
        return 0;
    }
    if (patterns.empty()) {
        std::cerr << "journal: give at least one --pattern\n";
        return 2;
    }

    slotbus::journal::journal_file file(options);
    try {
        if (const auto dropped = file.open())
            std::cerr << "journal: dropped " << dropped << " bytes of a line cut short by a crash"
                      << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "journal: " << e.what() << std::endl;
        return 1;
    }

    slotbus::connection bus(slotbus::connection_options{"journal"});
    bus.connect();
    const std::string me = bus.plugin_name().empty() ? "journal" : bus.plugin_name();
    if (slot_name.empty())
        slot_name = "slotbus/journal/" + me;
    auto inbox = slotbus::server_slot::create(bus, slot_name);
    std::vector<slotbus::subscription> subscriptions;
    for (const auto& pattern : patterns)
        subscriptions.push_back(inbox.subscribe(pattern));

    slotbus::stop_signals stop(bus, [&](int) { inbox.cancel(); });
    journal_plugin journal(bus, inbox, file);
    journal.read_next();
    std::cerr << "journal: writing " << patterns.size()
              << (patterns.size() == 1 ? " pattern" : " patterns") << " to "
              << file.current().string() << std::endl;
    try {
        bus.run();
        if (!journal.failed())
            journal.drain();
    } catch (const std::exception& e) {
        std::cerr << "journal: " << e.what() << std::endl;
        return 1;
    }
    std::cerr << "journal: stopped" << std::endl;
    return journal.failed() ? 1 : 0;
}
