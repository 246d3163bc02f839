#include "slotbus/client_slot.hpp"
#include "slotbus/server_slot.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>

namespace slotbus {
namespace {

using detail::connection_impl;
using detail::reply;

// Sends one request frame and waits for its answer.
template <class Message> reply request(connection_impl& impl, Message m, std::error_code& ec)
{
    m.request_id = impl.next_request_id();
    byte_buffer frame;
    encode(frame, m);
    return impl.wait<reply>(
        [&](auto h) { impl.start_request(std::move(frame), m.request_id, std::move(h)); }, ec);
}

// The destructor's close: sent, not waited for.
void close_quietly(const std::shared_ptr<connection_impl>& impl, std::uint32_t handle)
{
    close_frame m{impl->next_request_id(), handle};
    byte_buffer frame;
    encode(frame, m);
    impl->start_request(std::move(frame), m.request_id, [](boost::system::error_code, reply) {});
}

// What a reconnect re-opens for a writer: its name, as it was opened.
detail::restorable writer_of(std::string name, std::uint32_t flags)
{
    detail::restorable what;
    what.name = std::move(name);
    what.open_flags = flags;
    return what;
}

slot_info info_of(const std::shared_ptr<connection_impl>& impl, std::uint32_t handle,
                  std::error_code& ec)
{
    if (!impl) {
        ec = error::invalid_handle;
        return {};
    }
    return request(*impl, info_frame{0, handle}, ec).info;
}

} // namespace

// ---- server_slot ----------------------------------------------------------------------------

void server_slot::start_create(std::shared_ptr<detail::connection_impl> impl, std::string_view name,
                               const slot_options& options,
                               detail::open_handler<server_slot> handler)
{
    std::error_code ec;
    auto parsed = slot_name::parse(name, ec);
    if (!ec && parsed.scope() != name_scope::local)
        ec = error::invalid_name; // a server creates only `\\.\` names
    if (ec) {
        auto ex = impl->get_executor();
        boost::asio::post(ex, boost::asio::append(std::move(handler), boost::system::error_code(ec),
                                                  server_slot{}));
        return;
    }
    detail::restorable what;
    what.reader = true;
    what.name = parsed.str();
    what.max_message_size = options.max_message_size;
    what.read_timeout = options.read_timeout;
    what.byte_budget =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(options.byte_budget, 0xffffffffu));
    what.overflow = static_cast<std::uint32_t>(options.overflow);
    const auto handle = impl->next_handle();
    create_frame m{impl->next_request_id(),
                   handle,
                   what.max_message_size,
                   what.read_timeout,
                   what.byte_budget,
                   what.overflow,
                   what.name};
    byte_buffer frame;
    encode(frame, m);
    impl->start_request(std::move(frame), m.request_id,
                        [impl, handle, parsed = std::move(parsed), what = std::move(what),
                         h = std::move(handler)](boost::system::error_code e, reply r) mutable {
                            server_slot slot;
                            if (!e) {
                                slot.impl_ = impl;
                                slot.handle_ = handle;
                                slot.name_ = std::move(parsed);
                                impl->add_reader(handle, r.value_a);
                                impl->remember(handle, std::move(what));
                            }
                            std::move(h)(e, std::move(slot));
                        });
}

server_slot server_slot::create(connection& bus, std::string_view name, const slot_options& options,
                                std::error_code& ec)
{
    return bus.impl()->wait<server_slot>(
        [&](auto h) {
            start_create(bus.impl(), name, options,
                         detail::open_handler<server_slot>(std::move(h)));
        },
        ec);
}

server_slot server_slot::create(connection& bus, std::string_view name, const slot_options& options)
{
    std::error_code ec;
    auto slot = create(bus, name, options, ec);
    throw_if(ec, "slotbus::server_slot::create", name);
    return slot;
}

server_slot server_slot::attach(connection& bus, std::string_view token, std::error_code& ec)
{
    const auto handle = bus.impl()->next_handle();
    auto r = request(*bus.impl(), attach_frame{0, handle, token}, ec);
    if (ec)
        return {};
    server_slot slot;
    slot.impl_ = bus.impl();
    slot.handle_ = handle;
    slot.impl_->add_reader(handle, r.value_a);
    // A duplicate cannot be re-created after a reconnect: its token is spent.
    slot.impl_->remember(handle, {true, {}, 0, r.value_a, 0, 0, {}, false});
    return slot;
}

server_slot server_slot::attach(connection& bus, std::string_view token)
{
    std::error_code ec;
    auto slot = attach(bus, token, ec);
    throw_if(ec, "slotbus::server_slot::attach");
    return slot;
}

server_slot::server_slot(server_slot&& other) noexcept
    : impl_(std::move(other.impl_)), handle_(std::exchange(other.handle_, 0)),
      name_(std::move(other.name_))
{
}

server_slot& server_slot::operator=(server_slot&& other) noexcept
{
    if (this != &other) {
        std::error_code ignored;
        close(ignored);
        impl_ = std::move(other.impl_);
        handle_ = std::exchange(other.handle_, 0);
        name_ = std::move(other.name_);
    }
    return *this;
}

server_slot::~server_slot()
{
    if (handle_) {
        impl_->drop_reader(handle_);
        impl_->forget(handle_);
        close_quietly(impl_, handle_);
    }
}

std::string server_slot::read(std::error_code& ec)
{
    if (!handle_) {
        ec = error::invalid_handle;
        return {};
    }
    return impl_->wait<std::string>(
        [&](auto h) { impl_->start_read(handle_, detail::read_string_handler(std::move(h)), {}); },
        ec);
}

std::string server_slot::read()
{
    std::error_code ec;
    auto record = read(ec);
    throw_if(ec, "slotbus::server_slot::read");
    return record;
}

std::size_t server_slot::read(boost::asio::mutable_buffer buffer, std::error_code& ec)
{
    if (!handle_) {
        ec = error::invalid_handle;
        return 0;
    }
    return impl_->wait<std::size_t>(
        [&](auto h) {
            impl_->start_read(handle_, detail::read_buffer_handler(std::move(h)), buffer);
        },
        ec);
}

std::size_t server_slot::read(boost::asio::mutable_buffer buffer)
{
    std::error_code ec;
    auto size = read(buffer, ec);
    throw_if(ec, "slotbus::server_slot::read");
    return size;
}

received_record server_slot::read_record(std::error_code& ec)
{
    if (!handle_) {
        ec = error::invalid_handle;
        return {};
    }
    return impl_->wait<received_record>(
        [&](auto h) { impl_->start_read(handle_, detail::read_record_handler(std::move(h)), {}); },
        ec);
}

received_record server_slot::read_record()
{
    std::error_code ec;
    auto record = read_record(ec);
    throw_if(ec, "slotbus::server_slot::read_record");
    return record;
}

void server_slot::start_subscribe(std::shared_ptr<detail::connection_impl> impl,
                                  std::uint32_t handle, std::string_view pattern,
                                  detail::open_handler<subscription> handler)
{
    std::error_code ec;
    auto parsed = topic_pattern::parse(pattern, ec);
    if (!ec && !handle)
        ec = error::invalid_handle;
    if (ec) {
        auto ex = impl->get_executor();
        boost::asio::post(ex, boost::asio::append(std::move(handler), boost::system::error_code(ec),
                                                  subscription{}));
        return;
    }
    subscribe_frame m{impl->next_request_id(), handle, parsed.str()};
    byte_buffer frame;
    encode(frame, m);
    impl->start_request(std::move(frame), m.request_id,
                        [impl, handle, parsed = std::move(parsed),
                         h = std::move(handler)](boost::system::error_code e, reply) mutable {
                            if (e)
                                return std::move(h)(e, subscription{});
                            impl->remember_pattern(handle, parsed.str(), true);
                            std::move(h)(e, subscription(impl, handle, std::move(parsed)));
                        });
}

subscription server_slot::subscribe(std::string_view pattern, std::error_code& ec)
{
    if (!impl_) {
        ec = error::invalid_handle;
        return {};
    }
    return impl_->wait<subscription>(
        [&](auto h) {
            start_subscribe(impl_, handle_, pattern,
                            detail::open_handler<subscription>(std::move(h)));
        },
        ec);
}

subscription server_slot::subscribe(std::string_view pattern)
{
    std::error_code ec;
    auto s = subscribe(pattern, ec);
    throw_if(ec, "slotbus::server_slot::subscribe");
    return s;
}

slot_info server_slot::info(std::error_code& ec) const
{
    return info_of(impl_, handle_, ec);
}

slot_info server_slot::info() const
{
    std::error_code ec;
    auto i = info(ec);
    throw_if(ec, "slotbus::server_slot::info");
    return i;
}

void server_slot::set_read_timeout(std::uint32_t read_timeout, std::error_code& ec)
{
    if (!handle_) {
        ec = error::invalid_handle;
        return;
    }
    request(*impl_, set_timeout_frame{0, handle_, read_timeout}, ec);
    if (!ec)
        impl_->remember_timeout(handle_, read_timeout);
}

void server_slot::set_read_timeout(std::uint32_t read_timeout)
{
    std::error_code ec;
    set_read_timeout(read_timeout, ec);
    throw_if(ec, "slotbus::server_slot::set_read_timeout");
}

std::string server_slot::duplicate(std::error_code& ec)
{
    if (!handle_) {
        ec = error::invalid_handle;
        return {};
    }
    return request(*impl_, duplicate_frame{0, handle_}, ec).text;
}

std::string server_slot::duplicate()
{
    std::error_code ec;
    auto token = duplicate(ec);
    throw_if(ec, "slotbus::server_slot::duplicate");
    return token;
}

void server_slot::cancel()
{
    if (handle_)
        impl_->cancel_reads(handle_);
}

void server_slot::close(std::error_code& ec)
{
    ec.clear();
    if (!handle_)
        return;
    impl_->drop_reader(handle_);
    impl_->forget(handle_);
    request(*impl_, close_frame{0, std::exchange(handle_, 0)}, ec);
}

void server_slot::close()
{
    std::error_code ec;
    close(ec);
    throw_if(ec, "slotbus::server_slot::close");
}

// ---- subscription ---------------------------------------------------------------------------

subscription::~subscription()
{
    if (handle_) {
        // Sent, not waited for.
        unsubscribe_frame m{impl_->next_request_id(), handle_, pattern_.str()};
        byte_buffer frame;
        encode(frame, m);
        impl_->start_request(std::move(frame), m.request_id,
                             [](boost::system::error_code, reply) {});
        impl_->remember_pattern(handle_, pattern_.str(), false);
    }
}

void subscription::cancel(std::error_code& ec)
{
    ec.clear();
    if (!handle_)
        return;
    impl_->remember_pattern(handle_, pattern_.str(), false);
    request(*impl_, unsubscribe_frame{0, std::exchange(handle_, 0), pattern_.str()}, ec);
}

void subscription::cancel()
{
    std::error_code ec;
    cancel(ec);
    throw_if(ec, "slotbus::subscription::cancel");
}

// ---- client_slot ----------------------------------------------------------------------------

void client_slot::start_open(std::shared_ptr<detail::connection_impl> impl, std::string_view name,
                             detail::open_handler<client_slot> handler, std::uint32_t flags)
{
    std::error_code ec;
    auto parsed = slot_name::parse(name, ec);
    if (ec) {
        auto ex = impl->get_executor();
        boost::asio::post(ex, boost::asio::append(std::move(handler), boost::system::error_code(ec),
                                                  client_slot{}));
        return;
    }
    const auto full = parsed.str();
    open_frame m{impl->next_request_id(), impl->next_handle(), flags, full};
    byte_buffer frame;
    encode(frame, m);
    impl->start_request(std::move(frame), m.request_id,
                        [impl, parsed = std::move(parsed), h = std::move(handler),
                         flags](boost::system::error_code e, reply r) mutable {
                            client_slot slot;
                            if (!e) {
                                slot.impl_ = impl;
                                slot.handle_ = r.handle;
                                impl->remember(r.handle, writer_of(parsed.str(), flags));
                                slot.name_ = std::move(parsed);
                            }
                            std::move(h)(e, std::move(slot));
                        });
}

client_slot client_slot::open(connection& bus, std::string_view name, std::error_code& ec)
{
    return open(bus, name, 0, ec);
}

client_slot client_slot::open(connection& bus, std::string_view name, std::uint32_t flags,
                              std::error_code& ec)
{
    return bus.impl()->wait<client_slot>(
        [&](auto h) {
            start_open(bus.impl(), name, detail::open_handler<client_slot>(std::move(h)), flags);
        },
        ec);
}

client_slot client_slot::open(connection& bus, std::string_view name)
{
    std::error_code ec;
    auto slot = open(bus, name, ec);
    throw_if(ec, "slotbus::client_slot::open", name);
    return slot;
}

client_slot::client_slot(client_slot&& other) noexcept
    : impl_(std::move(other.impl_)), handle_(std::exchange(other.handle_, 0)),
      name_(std::move(other.name_))
{
}

client_slot& client_slot::operator=(client_slot&& other) noexcept
{
    if (this != &other) {
        std::error_code ignored;
        close(ignored);
        impl_ = std::move(other.impl_);
        handle_ = std::exchange(other.handle_, 0);
        name_ = std::move(other.name_);
    }
    return *this;
}

client_slot::~client_slot()
{
    if (handle_) {
        impl_->forget(handle_);
        close_quietly(impl_, handle_);
    }
}

void client_slot::start_write(connection_impl& impl, std::uint32_t handle,
                              std::span<const boost::asio::const_buffer> records,
                              detail::write_handler handler, detail::results pace)
{
    // A frame over the host's limit would cost the whole connection: refuse
    // it here. A larger record may still go by lane, when there is one.
    const auto limit = std::max(impl.max_record_size(), impl.max_lane_record());
    const bool too_large = std::any_of(records.begin(), records.end(),
                                       [&](const auto& r) { return r.size() > limit; });
    if (handle == 0 || too_large || records.empty()) {
        const boost::system::error_code ec = handle == 0 ? error::invalid_handle
                                             : too_large ? error::message_exceeds_max_size
                                                         : boost::system::error_code{};
        boost::asio::post(impl.get_executor(),
                          boost::asio::append(std::move(handler), ec, std::uint32_t{0}));
        return;
    }
    impl.start_write(handle, records, std::move(handler), pace);
}

void client_slot::report_lost(std::uint32_t count)
{
    if (impl_ && handle_ != 0 && count != 0)
        impl_->tell_lost(handle_, count);
}

std::uint32_t client_slot::write(boost::asio::const_buffer record, std::error_code& ec)
{
    if (!impl_) {
        ec = error::invalid_handle;
        return 0;
    }
    return impl_->wait<std::uint32_t>(
        [&](auto h) {
            start_write(*impl_, handle_, {&record, 1}, std::move(h));
        },
        ec);
}

std::uint32_t client_slot::write_batch(std::span<const boost::asio::const_buffer> records,
                                       std::error_code& ec)
{
    if (!impl_) {
        ec = error::invalid_handle;
        return 0;
    }
    return impl_->wait<std::uint32_t>(
        [&](auto h) { start_write(*impl_, handle_, records, std::move(h)); }, ec);
}

std::uint32_t client_slot::write(boost::asio::const_buffer record)
{
    std::error_code ec;
    auto delivered = write(record, ec);
    throw_if(ec, "slotbus::client_slot::write");
    return delivered;
}

slot_info client_slot::info(std::error_code& ec) const
{
    return info_of(impl_, handle_, ec);
}

slot_info client_slot::info() const
{
    std::error_code ec;
    auto i = info(ec);
    throw_if(ec, "slotbus::client_slot::info");
    return i;
}

void client_slot::set_read_timeout(std::uint32_t read_timeout, std::error_code& ec)
{
    if (!impl_) {
        ec = error::invalid_handle;
        return;
    }
    request(*impl_, set_timeout_frame{0, handle_, read_timeout}, ec);
}

std::size_t client_slot::read(boost::asio::mutable_buffer, std::error_code& ec)
{
    if (!impl_) {
        ec = error::invalid_handle;
        return 0;
    }
    request(*impl_, poll_frame{0, handle_}, ec);
    return 0;
}

void client_slot::close(std::error_code& ec)
{
    ec.clear();
    if (!handle_)
        return;
    impl_->forget(handle_);
    request(*impl_, close_frame{0, std::exchange(handle_, 0)}, ec);
}

void client_slot::close()
{
    std::error_code ec;
    close(ec);
    throw_if(ec, "slotbus::client_slot::close");
}

} // namespace slotbus
