#include "slotbus/error.hpp"

#include <boost/system/error_category.hpp>
#include <boost/system/error_condition.hpp>

namespace slotbus {
namespace {

// A Boost.System category, seen by std::error_code through Boost's adapter:
// a boost::system::error_code made from such a std::error_code unwraps it,
// so async completions' value() is the Windows number too (a plain
// std::error_category would come back wrapped, its value() a hash).
class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "slotbus"; }

    std::string message(int value) const override
    {
        switch (static_cast<error>(value)) {
        case error::invalid_function:
            return "the host knows no such command";
        case error::file_not_found:
            return "no mailslot of that name has a receiver";
        case error::too_many_open_files:
            return "too many slots or handles on this connection";
        case error::access_denied:
            return "access denied for this handle";
        case error::invalid_handle:
            return "the handle or token is not valid";
        case error::invalid_data:
            return "the data is invalid";
        case error::not_supported:
            return "protocol version not supported";
        case error::bad_netpath:
            return "the network path was not found";
        case error::req_not_accep:
            return "the host takes no more connections now";
        case error::netname_deleted:
            return "the connection went before the write's result came: it may or may not have "
                   "been delivered";
        case error::network_access_denied:
            return "the remote host does not let this host write to that name";
        case error::invalid_parameter:
            return "the parameter is incorrect for this handle";
        case error::broken_pipe:
            return "the connection to the bus is gone";
        case error::sem_timeout:
            return "no record arrived within the read timeout";
        case error::insufficient_buffer:
            return "the buffer is smaller than the next record";
        case error::invalid_name:
            return "not a valid mailslot name";
        case error::already_exists:
            return "a mailslot of that name already exists";
        case error::filename_exced_range:
            return "the mailslot name is too long";
        case error::not_enough_quota:
            return "the host's budget for slots (this connection's or in all) is used up";
        case error::message_exceeds_max_size:
            return "the record is larger than the slot allows";
        }
        return "slotbus error " + std::to_string(value);
    }

    boost::system::error_condition default_error_condition(int value) const noexcept override
    {
        if (const auto c = std_condition(value); c != std::errc{})
            return {static_cast<int>(c), boost::system::generic_category()};
        return {value, *this};
    }

private:
    static std::errc std_condition(int value) noexcept
    {
        switch (static_cast<error>(value)) {
        case error::invalid_function:
            return std::errc::function_not_supported;
        case error::file_not_found:
            return std::errc::no_such_file_or_directory;
        case error::too_many_open_files:
            return std::errc::too_many_files_open;
        case error::access_denied:
            return std::errc::permission_denied;
        case error::invalid_handle:
            return std::errc::bad_file_descriptor;
        case error::invalid_data:
            return std::errc::bad_message;
        case error::not_supported:
            return std::errc::protocol_not_supported;
        case error::bad_netpath:
            return std::errc::host_unreachable;
        case error::req_not_accep:
            return std::errc::resource_unavailable_try_again;
        case error::netname_deleted:
            return std::errc::connection_aborted;
        case error::network_access_denied:
            return std::errc::permission_denied;
        case error::invalid_parameter:
            return std::errc::invalid_argument;
        case error::broken_pipe:
            return std::errc::broken_pipe;
        case error::sem_timeout:
            return std::errc::timed_out;
        case error::insufficient_buffer:
            return std::errc::no_buffer_space;
        case error::invalid_name:
            return std::errc::invalid_argument;
        case error::already_exists:
            return std::errc::file_exists;
        case error::filename_exced_range:
            return std::errc::filename_too_long;
        case error::not_enough_quota:
            return std::errc::not_enough_memory;
        case error::message_exceeds_max_size:
            return std::errc::message_size;
        }
        return std::errc{}; // not one of ours: its condition is itself
    }
};

} // namespace

const std::error_category& error_category() noexcept
{
    static const category instance;
    return instance; // Boost's std adapter of it
}

void throw_if(const std::error_code& ec, const char* what)
{
    if (ec)
        throw system_error(ec, what);
}

void throw_if(const std::error_code& ec, const char* what, std::string_view about)
{
    if (!ec)
        return;
    throw system_error(ec, std::string(what) + " " + std::string(about)); // then ": message"
}

} // namespace slotbus
