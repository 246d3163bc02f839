#include "slotbus/subscriber.hpp"

#include <boost/json/monotonic_resource.hpp>

#include <optional>

namespace slotbus {

namespace {
constexpr std::size_t remembered_ids = 4096; // duplicates are caught within this many events

/// Why `source` is not the sender's to use, or empty when it is. `/plugins/`
/// sources belong to the host's plugins: one names its own plugin only, and
/// a plugin publishes as no one else.
std::string forgery(std::string_view source, const record_sender& from)
{
    constexpr std::string_view plugins = "/plugins/";
    std::string_view claimed;
    if (source.starts_with(plugins)) {
        claimed = source.substr(plugins.size());
        claimed = claimed.substr(0, claimed.find('/'));
    }
    const bool is_plugin = !from.plugin.empty();
    if (is_plugin ? claimed == from.plugin : !source.starts_with(plugins))
        return {};
    std::string who = is_plugin ? "plugin " + from.plugin : "uid " + std::to_string(from.uid);
    return "forged source " + std::string(source) + ": the host says " + who + " (pid " +
           std::to_string(from.pid) + ") wrote it";
}
} // namespace

subscriber::subscriber(connection& bus, std::string_view inbox, const slot_options& options)
    : inbox_(server_slot::create(bus, inbox, options)), seen_(remembered_ids)
{
}

void subscriber::dispatch(const received_record& record)
{
    handle(record.data, record.missed_before, record.sender());
}

void subscriber::handle(std::string_view data, std::uint32_t missed_before,
                        const record_sender& from)
{
    ++stats_.received;
    stats_.missed += missed_before;
    std::error_code ec;
    std::string why;
    auto malformed = [&] {
        ++stats_.malformed;
        if (on_error_)
            on_error_(ec, why);
    };
    // Parsed into a stack buffer; typed handlers convert `data` from there,
    // and it is copied into the envelope only for one that takes the envelope.
    unsigned char scratch[4096];
    boost::json::monotonic_resource parse_memory(scratch, sizeof scratch);
    boost::json::value document(&parse_memory);
    // A handler that dispatches into this subscriber again gets an envelope of its own.
    std::optional<envelope> nested;
    envelope& e = handling_ ? nested.emplace() : current_;
    const bool outermost = !std::exchange(handling_, true);
    struct end_of_handling {
        bool& flag;
        bool outermost;
        ~end_of_handling()
        {
            if (outermost)
                flag = false;
        }
    } ending{handling_, outermost};
    const boost::json::value* parsed_data =
        detail::parse_envelope_into(data, e, document, ec, &why);
    if (ec)
        return malformed();
    // Before the duplicate check: a forger must not get a genuine event
    // dropped as a duplicate by sending its source and id first.
    if (!from.name.empty()) // a record the host stamped
        if (why = forgery(e.source, from); !why.empty()) {
            ++stats_.forged;
            if (on_error_)
                on_error_(error::access_denied, why);
            return;
        }
    if (seen_.seen_before(e.source, e.id)) {
        ++stats_.duplicates;
        return;
    }
    // Dispatched by the name it was written to, as the host says; a stream
    // mostly repeats it: its name key is worked out once.
    const std::string_view written = from.name.empty() ? std::string_view(e.subject) : from.name;
    if (written != last_written_) {
        last_written_ = written;
        last_written_key_ = fold_case(written); // a name key: case-folded, `\` between
        for (auto& c : last_written_key_)
            if (c == '/')
                c = '\\';
    }
    const std::string& subject_key = last_written_key_;
    bool handled = false;
    for (auto& r : routes_) {
        if (r.type != e.type || (!subject_key.empty() && !r.pattern.matches(subject_key)))
            continue;
        handled = true;
        if (r.wants_envelope && parsed_data && e.data.is_null())
            e.data = boost::json::value(*parsed_data, boost::json::storage_ptr());
        r.call(e, parsed_data ? *parsed_data : e.data, ec, why);
        if (ec)
            return malformed();
        ++stats_.dispatched;
    }
    if (!handled)
        ++stats_.unhandled;
}

std::size_t subscriber::drain_backlog()
{
    // Records read but not yet handed out: a handler that stops the loop
    // mid-batch leaves the rest for the next run, in order.
    std::size_t n = 0;
    while (!backlog_.empty() && !stopping_) {
        const record_batch& batch = backlog_.front();
        const auto at = backlog_at_++;
        if (backlog_at_ == batch.size()) {
            // The batch's last record: the batch leaves the backlog first
            // (moved, so the view stays valid while the handler runs).
            record_batch last = std::move(backlog_.front());
            backlog_.pop_front();
            backlog_at_ = 0;
            handle(last[at], last.missed_before(at), last.sender(at));
        } else {
            handle(batch[at], batch.missed_before(at), batch.sender(at));
        }
        ++n;
    }
    return n;
}

std::size_t subscriber::process_for(std::chrono::milliseconds idle)
{
    stopping_ = false;
    std::size_t processed = drain_backlog();
    const auto timeout = static_cast<std::uint32_t>(idle.count());
    if (inbox_.info().read_timeout != timeout)
        inbox_.set_read_timeout(timeout);
    while (true) {
        std::error_code ec;
        auto record = inbox_.read_record(ec);
        if (ec == error::sem_timeout)
            return processed;
        throw_if(ec, "slotbus::subscriber::process_for");
        dispatch(record);
        ++processed;
    }
}

void subscriber::next()
{
    // A batch per completion: a busy inbox costs one completion per batch.
    inbox_.async_read_records(256, [this](boost::system::error_code ec, record_batch records) {
        if (!ec) {
            if (!records.empty())
                backlog_.push_back(std::move(records));
            drain_backlog();
            if (!stopping_)
                return next();
        }
        if (done_) {
            auto done = std::move(*done_);
            done_.reset();
            std::move(done)(stopping_ ? boost::asio::error::operation_aborted : ec);
        }
    });
}

void subscriber::stop()
{
    stopping_ = true;
    inbox_.cancel(); // the read under way ends with operation_aborted; never blocks
}

} // namespace slotbus
