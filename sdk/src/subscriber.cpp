#include "slotbus/subscriber.hpp"

namespace slotbus {

namespace {
constexpr std::size_t remembered_ids = 4096; // duplicates are caught within this many events
}

subscriber::subscriber(connection& bus, std::string_view inbox, const slot_options& options)
    : inbox_(server_slot::create(bus, inbox, options))
{
}

bool subscriber::seen_before(const envelope& e)
{
    std::string key = e.source;
    key += '\n';
    key += e.id;
    if (!seen_.insert(key).second)
        return true;
    seen_order_.push_back(std::move(key));
    if (seen_order_.size() > remembered_ids) {
        seen_.erase(seen_order_.front());
        seen_order_.pop_front();
    }
    return false;
}

void subscriber::dispatch(const received_record& record)
{
    ++stats_.received;
    stats_.missed += record.missed_before;
    std::error_code ec;
    std::string why;
    auto malformed = [&] {
        ++stats_.malformed;
        if (on_error_)
            on_error_(ec, why);
    };
    const envelope e = parse_envelope(record.data, ec, &why);
    if (ec)
        return malformed();
    if (seen_before(e)) {
        ++stats_.duplicates;
        return;
    }
    const auto subject = e.subject.empty() ? std::string{} : fold_case(e.subject);
    std::string subject_key = subject;
    for (auto& c : subject_key)
        if (c == '/')
            c = '\\';
    bool handled = false;
    for (auto& r : routes_) {
        if (r.type != e.type || (!subject_key.empty() && !r.pattern.matches(subject_key)))
            continue;
        handled = true;
        r.call(e, ec, why);
        if (ec)
            return malformed();
        ++stats_.dispatched;
    }
    if (!handled)
        ++stats_.unhandled;
}

std::size_t subscriber::process_for(std::chrono::milliseconds idle)
{
    const auto timeout = static_cast<std::uint32_t>(idle.count());
    if (inbox_.info().read_timeout != timeout)
        inbox_.set_read_timeout(timeout);
    std::size_t processed = 0;
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
    inbox_.async_read_record([this](boost::system::error_code ec, received_record record) {
        if (!ec) {
            dispatch(record);
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
