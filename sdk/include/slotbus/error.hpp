// slotbus errors: one category whose values are the Windows error numbers, so a
// port of mailslot code reads the same. The ERROR_* spellings are macros on
// Windows, hence the snake_case enumerators.
#pragma once

#include "slotbus/export.hpp"

#include <string>
#include <string_view>
#include <system_error>

namespace slotbus {

/// Every error slotbus reports itself. Values are the Windows error numbers.
///
/// Compare with the enumerators (`ec == slotbus::error::sem_timeout`) or with
/// portable conditions (`ec == std::errc::timed_out`).
enum class error : int {
    invalid_function = 1,    ///< the host knows no such admin command
    file_not_found = 2,      ///< no slot of that name; a write found no receiver
    too_many_open_files = 4, ///< a per-connection handle or slot limit was reached
    access_denied = 5,       ///< the creator wrote to its own slot; a writer changed the timeout
    invalid_handle = 6,      ///< the handle or duplicate token is not (or no longer) valid
    invalid_data = 13,       ///< a malformed frame, or a record the topic does not accept
    not_supported = 50,      ///< the peer speaks no protocol version this side does
    bad_netpath = 53,        ///< broadcast record over 424 bytes; unknown remote host
    netname_deleted = 64, ///< the connection (or host link) went before a sent write's result came
    network_access_denied = 65, ///< the remote host's policy refuses this host the name
    req_not_accep = 71,         ///< the host takes no more connections (its caps) now
    invalid_parameter = 87,     ///< a writer handle was used to read
    broken_pipe = 109,          ///< the connection to the host is gone
    sem_timeout = 121,          ///< a read found no record within the slot's timeout
    insufficient_buffer = 122,  ///< the read buffer is smaller than the next record
    invalid_name = 123,         ///< not a mailslot name (or not one a server may create)
    already_exists = 183,       ///< a slot of that name (in any case) exists
    filename_exced_range = 206, ///< the name is longer than max_path_length
    not_enough_quota = 1816,    ///< a budget cap of the host (per connection or in all) is reached
    message_exceeds_max_size = 4336, ///< the record is larger than the slot's maximum
};

/// The category of slotbus::error; name() is "slotbus".
SLOTBUS_API const std::error_category& error_category() noexcept;

/// Makes an error_code in slotbus's category (found by argument-dependent lookup).
inline std::error_code make_error_code(error e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

/// Thrown by the throwing overloads; code() is the same code the
/// error_code& overloads report.
class SLOTBUS_API system_error : public std::system_error {
public:
    using std::system_error::system_error;
};

/// Throws slotbus::system_error when ec is set; `what` names the operation.
SLOTBUS_API void throw_if(const std::error_code& ec, const char* what);
/// The same, naming what it was about too: "slotbus::client_slot::open
/// \\.\mailslot\orders: no mailslot of that name has a receiver".
SLOTBUS_API void throw_if(const std::error_code& ec, const char* what, std::string_view about);

} // namespace slotbus

template <> struct std::is_error_code_enum<slotbus::error> : std::true_type {
};
