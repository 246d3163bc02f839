// The reader's side of a mailslot: CreateMailslot, ReadFile, GetMailslotInfo,
// SetMailslotInfo.
#pragma once

#include "slotbus/connection.hpp"
#include "slotbus/export.hpp"
#include "slotbus/slot_info.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/subscription.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>

#include <string>
#include <string_view>

namespace slotbus {

/// How a slot is made: CreateMailslot's two values and slotbus's flow control.
struct SLOTBUS_API slot_options {
    std::uint32_t max_message_size = 0;                 ///< 0: any size
    std::uint32_t read_timeout = mailslot_wait_forever; ///< ms; 0: no wait
    /// Unread bytes it holds, each record costing its size plus 28 (its length
    /// and the host's entry for it); 0: the host's default.
    std::uint64_t byte_budget = 0;
    overflow_policy overflow = overflow_policy::block; ///< what a full slot does
};

/// A slot this process receives on. The slot lives while a reader handle to
/// it is open (this one, or a duplicate); closing the last one destroys it
/// and discards what was not read. Move-only; the destructor closes.
///
/// Reads use the slot's timeout: 0 fails at once with error::sem_timeout when
/// no record is queued; N ms fails with it after N ms; mailslot_wait_forever
/// waits. Records arrive whole, in the order the host received them.
///
/// @code
/// auto slot = slotbus::server_slot::create(bus, "taxes/sue");
/// std::string record = slot.read();
/// @endcode
class [[nodiscard]] SLOTBUS_API server_slot {
public:
    /// Creates `name` (a local name). Errors: error::invalid_name,
    /// error::filename_exced_range, error::already_exists (any case),
    /// error::too_many_open_files, error::invalid_parameter (no such policy).
    static server_slot create(connection& bus, std::string_view name, const slot_options& options,
                              std::error_code& ec);
    static server_slot create(connection& bus, std::string_view name, const slot_options& options);
    /// CreateMailslot's shape: a maximum record size and a read timeout.
    static server_slot create(connection& bus, std::string_view name,
                              std::uint32_t max_message_size, std::uint32_t read_timeout,
                              std::error_code& ec)
    {
        return create(bus, name, slot_options{max_message_size, read_timeout}, ec);
    }
    static server_slot create(connection& bus, std::string_view name,
                              std::uint32_t max_message_size = 0,
                              std::uint32_t read_timeout = mailslot_wait_forever)
    {
        return create(bus, name, slot_options{max_message_size, read_timeout});
    }

    /// create, asynchronously. Completion signature:
    /// void(boost::system::error_code, server_slot).
    template <boost::asio::completion_token_for<void(boost::system::error_code, server_slot)>
                  Token = boost::asio::deferred_t>
    static auto async_create(connection& bus, std::string_view name, slot_options options = {},
                             Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, server_slot)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::string n,
               slot_options o) {
                start_create(std::move(impl), n, o,
                             detail::open_handler<server_slot>(std::move(handler)));
            },
            token, bus.impl(), std::string(name), options);
    }

    /// Opens a reader handle on the slot a duplicate() token names. Each
    /// token works once. Errors: error::invalid_handle.
    static server_slot attach(connection& bus, std::string_view token, std::error_code& ec);
    static server_slot attach(connection& bus, std::string_view token);

    server_slot() = default;
    server_slot(server_slot&& other) noexcept;
    server_slot& operator=(server_slot&& other) noexcept;
    ~server_slot();

    /// Reads the next record. Errors: error::sem_timeout, error::broken_pipe.
    std::string read(std::error_code& ec);
    std::string read();

    /// Reads the next record into `buffer` and returns its size. When the
    /// buffer is too small: error::insufficient_buffer, the record stays
    /// queued, and the return value is the size it needs.
    std::size_t read(boost::asio::mutable_buffer buffer, std::error_code& ec);
    std::size_t read(boost::asio::mutable_buffer buffer);

    /// Reads the next record asynchronously, with the slot's timeout.
    /// Completion signature: void(boost::system::error_code, std::string).
    /// Closing the slot, cancel(), or a cancellation slot bound to the token
    /// (per-operation cancellation, any type) complete it with
    /// boost::asio::error::operation_aborted; the record it would have read stays.
    template <boost::asio::completion_token_for<void(boost::system::error_code, std::string)>
                  Token = boost::asio::deferred_t>
    auto async_read(Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::string)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle) {
                impl->start_read(handle, detail::read_string_handler(std::move(handler)), {});
            },
            token, impl_, handle_);
    }

    /// Reads the next record with the count of records an overflow policy
    /// dropped just before it (0 under back-pressure, which drops nothing).
    received_record read_record(std::error_code& ec);
    received_record read_record();

    /// Also receive every write to a name matching `pattern` (exact,
    /// `a\*`, `a\**`), until the returned subscription is dropped.
    /// Errors: error::invalid_name, error::already_exists (this slot has that
    /// pattern), error::too_many_open_files.
    subscription subscribe(std::string_view pattern, std::error_code& ec);
    /// subscribe, asynchronously. Completion signature:
    /// void(boost::system::error_code, subscription).
    template <boost::asio::completion_token_for<void(boost::system::error_code, subscription)>
                  Token = boost::asio::deferred_t>
    auto async_subscribe(std::string_view pattern, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, subscription)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle,
               std::string p) {
                start_subscribe(std::move(impl), handle, p,
                                detail::open_handler<subscription>(std::move(handler)));
            },
            token, impl_, handle_, std::string(pattern));
    }
    subscription subscribe(std::string_view pattern);

    /// read_record, asynchronously. Completion signature:
    /// void(boost::system::error_code, received_record).
    template <boost::asio::completion_token_for<void(boost::system::error_code, received_record)>
                  Token = boost::asio::deferred_t>
    auto async_read_record(Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, received_record)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle) {
                impl->start_read(handle, detail::read_record_handler(std::move(handler)), {});
            },
            token, impl_, handle_);
    }

    /// Reads every record already delivered here, up to `max`, in one
    /// completion — at least one: with none here it waits like read(), with
    /// the slot's timeout. The fast way to drain a busy slot. Completion
    /// signature: void(boost::system::error_code, std::vector<received_record>).
    template <boost::asio::completion_token_for<void(boost::system::error_code,
                                                     std::vector<received_record>)>
                  Token = boost::asio::deferred_t>
    auto async_read_batch(std::size_t max, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code,
                                                       std::vector<received_record>)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle,
               std::size_t n) {
                impl->start_read(handle, detail::read_batch_handler(std::move(handler)), {}, n);
            },
            token, impl_, handle_, max);
    }

    /// async_read_batch without a string per record: the records' bytes come
    /// back to back in one record_batch — the fastest way to drain a busy
    /// slot. Completion signature: void(boost::system::error_code, record_batch).
    ///
    /// @code
    /// inbox.async_read_records(1024, [](boost::system::error_code ec, slotbus::record_batch b) {
    ///     for (std::size_t i = 0; !ec && i < b.size(); ++i)
    ///         handle(b[i]); // a std::string_view, valid while b lives
    /// });
    /// @endcode
    template <boost::asio::completion_token_for<void(boost::system::error_code, record_batch)>
                  Token = boost::asio::deferred_t>
    auto async_read_records(std::size_t max, Token&& token = {})
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, record_batch)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle,
               std::size_t n) {
                impl->start_read(handle, detail::read_records_handler(std::move(handler)), {}, n);
            },
            token, impl_, handle_, max);
    }

    /// Exact at the moment the host answers.
    slot_info info(std::error_code& ec) const;
    [[nodiscard]] slot_info info() const;

    /// Changes the timeout for every handle of the slot, duplicates included.
    void set_read_timeout(std::uint32_t read_timeout, std::error_code& ec);
    void set_read_timeout(std::uint32_t read_timeout);

    /// A token another process attach()es with to share this slot's queue
    /// (the bInheritHandle idea): each record is read exactly once.
    std::string duplicate(std::error_code& ec);
    [[nodiscard]] std::string duplicate();

    /// Ends every read under way on this handle with
    /// boost::asio::error::operation_aborted; the slot and its records stay.
    /// Never blocks: safe inside a completion handler.
    void cancel();

    void close(std::error_code& ec);
    void close();

    [[nodiscard]] bool is_open() const noexcept { return handle_ != 0; }
    [[nodiscard]] const slot_name& name() const noexcept { return name_; }

private:
    static void start_create(std::shared_ptr<detail::connection_impl> impl, std::string_view name,
                             const slot_options& options,
                             detail::open_handler<server_slot> handler);
    static void start_subscribe(std::shared_ptr<detail::connection_impl> impl, std::uint32_t handle,
                                std::string_view pattern,
                                detail::open_handler<subscription> handler);

    std::shared_ptr<detail::connection_impl> impl_;
    std::uint32_t handle_ = 0;
    slot_name name_;
};

} // namespace slotbus
