// The writer's side of a mailslot: CreateFile and WriteFile.
#pragma once

#include "slotbus/connection.hpp"
#include "slotbus/export.hpp"
#include "slotbus/slot_info.hpp"
#include "slotbus/slot_name.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>

#include <span>
#include <string_view>

namespace slotbus {

/// A handle for writing to a slot by name. It binds to the name, not to one
/// slot: when the receiver re-creates its slot, writes reach it again.
/// Move-only; the destructor closes.
///
/// Every write is one record and gets a real result: the number of slots that
/// received it, or an error. Writes are pipelined; write() waits only for its
/// own acknowledgement, async_write() for none. An async_write with
/// boost::asio::detached (nobody waits for its result) lets the host send
/// that result with the next thing it sends this connection, instead of in a
/// frame — and a wake-up of this process — of its own.
///
/// @code
/// auto slot = slotbus::client_slot::open(bus, "taxes/sue");
/// slot.write("Message one for mailslot.");
/// @endcode
class [[nodiscard]] SLOTBUS_API client_slot {
public:
    /// Opens `name` in any form. Errors: error::invalid_name,
    /// error::filename_exced_range, error::file_not_found (no receiver),
    /// error::bad_netpath (a host this bus cannot reach).
    static client_slot open(connection& bus, std::string_view name, std::error_code& ec);
    static client_slot open(connection& bus, std::string_view name);

    /// open, asynchronously. Completion signature:
    /// void(boost::system::error_code, client_slot).
    template <boost::asio::completion_token_for<void(boost::system::error_code, client_slot)>
                  Token = boost::asio::deferred_t>
    static auto async_open(connection& bus, std::string_view name, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, client_slot)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::string n) {
                start_open(std::move(impl), n,
                           detail::open_handler<client_slot>(std::move(handler)));
            },
            token, bus.impl(), std::string(name));
    }

    client_slot() = default;
    client_slot(client_slot&& other) noexcept;
    client_slot& operator=(client_slot&& other) noexcept;
    ~client_slot();

    /// Writes one record; returns how many slots received it. Errors:
    /// error::file_not_found (no receiver now), error::message_exceeds_max_size,
    /// error::bad_netpath (broadcast over 424 bytes), error::access_denied
    /// (this connection is the slot's reader), error::broken_pipe.
    std::uint32_t write(boost::asio::const_buffer record, std::error_code& ec);
    std::uint32_t write(boost::asio::const_buffer record);
    std::uint32_t write(std::string_view record, std::error_code& ec)
    {
        return write(boost::asio::buffer(record), ec);
    }
    std::uint32_t write(std::string_view record) { return write(boost::asio::buffer(record)); }

    /// Writes one record without waiting; the bytes are copied when the operation starts.
    /// Completion signature: void(boost::system::error_code, std::uint32_t delivered).
    template <boost::asio::completion_token_for<void(boost::system::error_code, std::uint32_t)>
                  Token = boost::asio::deferred_t>
    auto async_write(boost::asio::const_buffer record, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::uint32_t)>(
            // By reference: a copy of the shared_ptr would cost two atomic operations a write.
            [](auto handler, const std::shared_ptr<detail::connection_impl>& impl,
               std::uint32_t handle, boost::asio::const_buffer data) {
                start_write(*impl, handle, {&data, 1}, detail::write_handler(std::move(handler)),
                            pace_for<Token>);
            },
            token, impl_, handle_, record);
    }

    /// Writes several records, in order, each a write of its own (so each
    /// reaches the readers as one record), with one completion for them all:
    /// the first error among them (the others still went) and the slots
    /// reached, summed. The cheapest way to send many small records: one
    /// handler per batch instead of one per record. The bytes are copied when
    /// the operation starts. Completion signature:
    /// void(boost::system::error_code, std::uint32_t delivered).
    template <boost::asio::completion_token_for<void(boost::system::error_code, std::uint32_t)>
                  Token = boost::asio::deferred_t>
    auto async_write_batch(std::span<const boost::asio::const_buffer> records, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::uint32_t)>(
            [](auto handler, const std::shared_ptr<detail::connection_impl>& impl,
               std::uint32_t handle, std::span<const boost::asio::const_buffer> all) {
                start_write(*impl, handle, all, detail::write_handler(std::move(handler)),
                            pace_for<Token>);
            },
            token, impl_, handle_, records);
    }
    /// async_write_batch, waiting for the last acknowledgement.
    /// Tells the readers of this name's slots on the host that `count`
    /// records meant for them were lost before the next one written through
    /// this handle: they hear it as a gap (missed_before), as for a drop. For
    /// a bridge passing on another bus's losses. Sent in order with the
    /// writes; no answer comes. Not carried over a link or a broadcast.
    void report_lost(std::uint32_t count);

    std::uint32_t write_batch(std::span<const boost::asio::const_buffer> records,
                              std::error_code& ec);

    /// Works through a writer's handle too, and is as exact.
    slot_info info(std::error_code& ec) const;
    [[nodiscard]] slot_info info() const;

    /// Always error::access_denied: only a reader sets the timeout.
    void set_read_timeout(std::uint32_t read_timeout, std::error_code& ec);
    /// Always error::invalid_parameter: a writer does not read.
    std::size_t read(boost::asio::mutable_buffer buffer, std::error_code& ec);

    void close(std::error_code& ec);
    void close();

    [[nodiscard]] bool is_open() const noexcept { return handle_ != 0; }
    [[nodiscard]] const slot_name& name() const noexcept { return name_; }

private:
    /// `flags`: open_frame's (open_publish for a publisher's handle).
    static void start_open(std::shared_ptr<detail::connection_impl> impl, std::string_view name,
                           detail::open_handler<client_slot> handler, std::uint32_t flags = 0);
    static client_slot open(connection& bus, std::string_view name, std::uint32_t flags,
                            std::error_code& ec);
    static void start_write(detail::connection_impl& impl, std::uint32_t handle,
                            std::span<const boost::asio::const_buffer> records,
                            detail::write_handler handler,
                            detail::results pace = detail::results::prompt);
    template <class Token>
    static constexpr detail::results pace_for =
        std::is_same_v<std::decay_t<Token>, boost::asio::detached_t>
            ? detail::results::when_convenient
            : detail::results::prompt;
    friend class publisher;

    std::shared_ptr<detail::connection_impl> impl_;
    std::uint32_t handle_ = 0;
    slot_name name_;
};

} // namespace slotbus
