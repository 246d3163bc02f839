#define BOOST_TEST_MODULE errors
#include "slotbus/error.hpp"

#include <boost/system/error_code.hpp>
#include <boost/test/unit_test.hpp>

using slotbus::error;

BOOST_AUTO_TEST_CASE(values_are_the_windows_numbers)
{
    BOOST_TEST(static_cast<int>(error::file_not_found) == 2);
    BOOST_TEST(static_cast<int>(error::access_denied) == 5);
    BOOST_TEST(static_cast<int>(error::invalid_data) == 13);
    BOOST_TEST(static_cast<int>(error::bad_netpath) == 53);
    BOOST_TEST(static_cast<int>(error::invalid_parameter) == 87);
    BOOST_TEST(static_cast<int>(error::sem_timeout) == 121);
    BOOST_TEST(static_cast<int>(error::insufficient_buffer) == 122);
    BOOST_TEST(static_cast<int>(error::invalid_name) == 123);
    BOOST_TEST(static_cast<int>(error::already_exists) == 183);
    BOOST_TEST(static_cast<int>(error::filename_exced_range) == 206);
    BOOST_TEST(static_cast<int>(error::message_exceeds_max_size) == 4336);
}

BOOST_AUTO_TEST_CASE(category_and_messages)
{
    std::error_code ec = error::sem_timeout;
    BOOST_TEST(ec.category().name() == std::string("slotbus"));
    BOOST_TEST(ec.value() == 121);
    BOOST_TEST(!ec.message().empty());
    BOOST_TEST(std::error_code(error::invalid_name).message() !=
               std::error_code(error::already_exists).message());
}

BOOST_AUTO_TEST_CASE(portable_conditions)
{
    BOOST_TEST((std::error_code(error::sem_timeout) == std::errc::timed_out));
    BOOST_TEST((std::error_code(error::file_not_found) == std::errc::no_such_file_or_directory));
    BOOST_TEST((std::error_code(error::already_exists) == std::errc::file_exists));
    BOOST_TEST((std::error_code(error::access_denied) == std::errc::permission_denied));
    BOOST_TEST((std::error_code(error::filename_exced_range) == std::errc::filename_too_long));
    BOOST_TEST((std::error_code(error::message_exceeds_max_size) == std::errc::message_size));
    BOOST_TEST((std::error_code(error::insufficient_buffer) == std::errc::no_buffer_space));
    BOOST_TEST((std::error_code(error::invalid_name) == std::errc::invalid_argument));
    BOOST_TEST(!(std::error_code(error::sem_timeout) == std::errc::invalid_argument));
}

BOOST_AUTO_TEST_CASE(boost_error_code_round_trip)
{
    // Async completions carry boost::system::error_code; the value survives.
    boost::system::error_code b = std::error_code(error::insufficient_buffer);
    std::error_code back = b;
    BOOST_TEST((back == error::insufficient_buffer));
    // ... and so does the Windows number, as docs/errors.md says (Boost 1.81
    // wraps a plain std::error_category's codes: value() was a hash).
    BOOST_TEST(b.value() == 122);
    BOOST_TEST(std::string(b.category().name()) == "slotbus");
    BOOST_TEST((b == boost::system::errc::no_buffer_space));
    BOOST_TEST((std::error_code(b) == std::errc::no_buffer_space));
}

BOOST_AUTO_TEST_CASE(throw_if_throws_only_on_error)
{
    BOOST_CHECK_NO_THROW(slotbus::throw_if({}, "x"));
    BOOST_CHECK_EXCEPTION(
        slotbus::throw_if(error::access_denied, "write"), slotbus::system_error,
        [](const slotbus::system_error& e) { return e.code() == error::access_denied; });
}
