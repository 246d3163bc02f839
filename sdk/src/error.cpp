#include "slotbus/error.hpp"

namespace slotbus {
namespace {

class category final : public std::error_category {
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

    std::error_condition default_error_condition(int value) const noexcept override
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
        return {value, *this};
    }
};

} // namespace

const std::error_category& error_category() noexcept
{
    static const category instance;
    return instance;
}

void throw_if(const std::error_code& ec, const char* what)
{
    if (ec)
        throw system_error(ec, what);
}

} // namespace slotbus
