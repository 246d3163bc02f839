// The Windows mailslot API (slotbus::win32) against a real host, a case per
// function and error path, written from the Windows documentation
// (CreateMailslot, CreateFile, ReadFile, WriteFile, GetMailslotInfo,
// SetMailslotInfo, CloseHandle, GetLastError) and DESIGN.md's contract.
#define BOOST_TEST_MODULE win32
#include "child.hpp"
#include "host_fixture.hpp"

#include "slotbus/error.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>
#include <windows.h>

using namespace std::chrono_literals;

// The header's numbers are slotbus's own: a port reads the same errors.
static_assert(ERROR_FILE_NOT_FOUND == static_cast<long>(slotbus::error::file_not_found));
static_assert(ERROR_ACCESS_DENIED == static_cast<long>(slotbus::error::access_denied));
static_assert(ERROR_INVALID_HANDLE == static_cast<long>(slotbus::error::invalid_handle));
static_assert(ERROR_BAD_NETPATH == static_cast<long>(slotbus::error::bad_netpath));
static_assert(ERROR_INVALID_PARAMETER == static_cast<long>(slotbus::error::invalid_parameter));
static_assert(ERROR_BROKEN_PIPE == static_cast<long>(slotbus::error::broken_pipe));
static_assert(ERROR_SEM_TIMEOUT == static_cast<long>(slotbus::error::sem_timeout));
static_assert(ERROR_INSUFFICIENT_BUFFER == static_cast<long>(slotbus::error::insufficient_buffer));
static_assert(ERROR_INVALID_NAME == static_cast<long>(slotbus::error::invalid_name));
static_assert(ERROR_ALREADY_EXISTS == static_cast<long>(slotbus::error::already_exists));
static_assert(ERROR_FILENAME_EXCED_RANGE ==
              static_cast<long>(slotbus::error::filename_exced_range));
static_assert(ERROR_MESSAGE_EXCEEDS_MAX_SIZE ==
              static_cast<long>(slotbus::error::message_exceeds_max_size));
static_assert(sizeof(DWORD) == 4 && sizeof(BOOL) == 4 && sizeof(WORD) == 2);
static_assert(MAILSLOT_WAIT_FOREVER == 0xffffffffu && MAILSLOT_NO_MESSAGE == 0xffffffffu);

namespace {

/// A host this process's API calls reach ($SLOTBUS_ADDRESS, as a ported program finds it).
struct bus_fixture {
    slotbus::test::host host;
    bus_fixture() { ::setenv("SLOTBUS_ADDRESS", host.socket().c_str(), 1); }
    ~bus_fixture() { ::unsetenv("SLOTBUS_ADDRESS"); }
};

HANDLE make_slot(const char* name, DWORD max_size = 0, DWORD timeout = MAILSLOT_WAIT_FOREVER)
{
    return CreateMailslotA(name, max_size, timeout, nullptr);
}

HANDLE open_slot(const char* name, DWORD access = GENERIC_WRITE, DWORD share = FILE_SHARE_READ)
{
    return CreateFileA(name, access, share, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
}

BOOL write_text(HANDLE h, const std::string& text, DWORD* written = nullptr)
{
    DWORD ignored = 0;
    return WriteFile(h, text.data(), static_cast<DWORD>(text.size()), written ? written : &ignored,
                     nullptr);
}

/// The next record, read with a buffer of 1 KiB; "" with `ok` false on failure.
std::string read_text(HANDLE h, BOOL* ok = nullptr)
{
    char buffer[1024];
    DWORD read = 12345;
    const BOOL done = ReadFile(h, buffer, sizeof buffer, &read, nullptr);
    if (ok)
        *ok = done;
    return done ? std::string(buffer, read) : std::string();
}

constexpr const char* slot_name = R"(\\.\mailslot\win32\test)";

} // namespace

BOOST_FIXTURE_TEST_SUITE(win32, bus_fixture)

// CreateMailslot: "An error occurs if a mailslot with the specified name already exists."
BOOST_AUTO_TEST_CASE(create_mailslot_makes_a_slot_once)
{
    const HANDLE slot = make_slot(slot_name);
    BOOST_REQUIRE(slot != INVALID_HANDLE_VALUE);
    BOOST_TEST((slot != nullptr));
    // Names are not case-sensitive; either slash serves.
    BOOST_TEST((make_slot(R"(\\.\MAILSLOT\WIN32\TEST)") == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_ALREADY_EXISTS);
    BOOST_TEST((make_slot("//./mailslot/win32/test") == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_ALREADY_EXISTS);
    // Closed, the slot is gone and its name free again.
    BOOST_TEST(CloseHandle(slot));
    const HANDLE again = make_slot(slot_name);
    BOOST_TEST((again != INVALID_HANDLE_VALUE));
    BOOST_TEST(CloseHandle(again));
}

BOOST_AUTO_TEST_CASE(create_mailslot_refuses_what_is_not_a_local_mailslot_name)
{
    for (const char* bad : {
             R"(taxes\sue)",               // the SDK's short form is not Windows' name
             R"(\\.\pipe\sue)",            // another namespace
             R"(C:\temp\sue)",             // a file
             R"(\\.\mailslot\)",           // no name
             R"(\\.\mailslot\taxes\\sue)", // an empty level
             R"(\\HOST\mailslot\sue)",     // a server creates on this machine only
             R"(\\*\mailslot\sue)",        // ... and no broadcast
             R"(\\.\mailslot\sue*)",       // wildcards belong to patterns
         }) {
        BOOST_TEST((make_slot(bad) == INVALID_HANDLE_VALUE), bad);
        BOOST_TEST(GetLastError() == ERROR_INVALID_NAME, bad);
    }
    BOOST_TEST((CreateMailslotA(nullptr, 0, 0, nullptr) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_INVALID_NAME);
    const std::string long_name = R"(\\.\mailslot\)" + std::string(300, 'x');
    BOOST_TEST((make_slot(long_name.c_str()) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_FILENAME_EXCED_RANGE);
}

BOOST_AUTO_TEST_CASE(wide_names_work_as_narrow_ones)
{
    const HANDLE slot = CreateMailslotW(L"\\\\.\\mailslot\\win32\\w\u00e9", 0, 0, nullptr);
    BOOST_REQUIRE(slot != INVALID_HANDLE_VALUE);
    const HANDLE writer = CreateFileW(L"\\\\.\\MAILSLOT\\win32\\W\u00e9", GENERIC_WRITE,
                                      FILE_SHARE_READ, nullptr, OPEN_EXISTING, 0, nullptr);
    BOOST_REQUIRE(writer != INVALID_HANDLE_VALUE);
    BOOST_TEST(write_text(writer, "wide"));
    BOOST_TEST(read_text(slot) == "wide");
    const wchar_t not_a_character[] = {
        L'\\', L'\\', L'.', L'\\', L'm', L'a',  L'i',
        L'l',  L's',  L'l', L'o',  L't', L'\\', static_cast<wchar_t>(0xd800),
        0};
    BOOST_TEST((CreateMailslotW(not_a_character, 0, 0, nullptr) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_INVALID_NAME);
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// CreateFile: "If CreateFile is called to access a non-existent mailslot, the
// ERROR_FILE_NOT_FOUND error code will be set."
BOOST_AUTO_TEST_CASE(create_file_opens_a_slot_that_has_a_server)
{
    BOOST_TEST((open_slot(slot_name) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_FILE_NOT_FOUND);
    const HANDLE slot = make_slot(slot_name);
    SetLastError(1234);
    const HANDLE writer = open_slot(slot_name);
    BOOST_REQUIRE(writer != INVALID_HANDLE_VALUE);
    BOOST_TEST(GetLastError() == 0u); // CreateFile's OPEN_EXISTING success sets 0
    BOOST_TEST((writer != slot));
    // The process that made the slot writes to it through its CreateFile handle.
    DWORD written = 0;
    BOOST_TEST(write_text(writer, "from the same process", &written));
    BOOST_TEST(written == 21u);
    BOOST_TEST(read_text(slot) == "from the same process");
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

BOOST_AUTO_TEST_CASE(create_file_refuses_what_a_mailslot_client_cannot_be)
{
    const HANDLE slot = make_slot(slot_name);
    // "An application must specify the FILE_SHARE_READ flag."
    BOOST_TEST((open_slot(slot_name, GENERIC_WRITE, FILE_SHARE_WRITE) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_SHARING_VIOLATION);
    // Files, pipes and devices are not slotbus's to open.
    for (const char* file : {"/etc/hostname", R"(C:\boot.ini)", R"(\\.\pipe\x)", "relative.txt"}) {
        BOOST_TEST((open_slot(file) == INVALID_HANDLE_VALUE), file);
        BOOST_TEST(GetLastError() == ERROR_NOT_SUPPORTED, file);
    }
    BOOST_TEST((open_slot(R"(\\.\mailslot\a\\b)") == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_INVALID_NAME);
    // A mailslot is made by CreateMailslot; CreateFile only opens one.
    for (const DWORD disposition : {CREATE_NEW, CREATE_ALWAYS, OPEN_ALWAYS, TRUNCATE_EXISTING}) {
        BOOST_TEST((CreateFileA(slot_name, GENERIC_WRITE, FILE_SHARE_READ, nullptr, disposition, 0,
                                nullptr) == INVALID_HANDLE_VALUE));
        BOOST_TEST(GetLastError() == ERROR_INVALID_PARAMETER);
    }
    BOOST_TEST((CreateFileA(slot_name, GENERIC_WRITE, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                            FILE_FLAG_OVERLAPPED, nullptr) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_NOT_SUPPORTED);
    BOOST_TEST((CreateFileA(nullptr, GENERIC_WRITE, FILE_SHARE_READ, nullptr, OPEN_EXISTING, 0,
                            nullptr) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_INVALID_PARAMETER);
    BOOST_TEST(CloseHandle(slot));
}

BOOST_AUTO_TEST_CASE(no_host_is_a_service_that_is_not_running)
{
    slotbus::test::temp_dir nowhere;
    ::setenv("SLOTBUS_ADDRESS", (nowhere.path / "no.sock").c_str(), 1);
    BOOST_TEST((make_slot(slot_name) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_SERVICE_NOT_ACTIVE);
    BOOST_TEST((open_slot(slot_name) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_SERVICE_NOT_ACTIVE);
}

// WriteFile + ReadFile: one write is one record, whole, in order.
BOOST_AUTO_TEST_CASE(records_arrive_whole_and_in_order)
{
    const HANDLE slot = make_slot(slot_name);
    const HANDLE writer = open_slot(slot_name);
    BOOST_REQUIRE(writer != INVALID_HANDLE_VALUE);
    for (int i = 0; i < 20; ++i)
        BOOST_TEST(write_text(writer, "record " + std::to_string(i)));
    DWORD written = 99;
    BOOST_TEST(WriteFile(writer, "", 0, &written, nullptr)); // a zero-length record is a record
    BOOST_TEST(written == 0u);
    for (int i = 0; i < 20; ++i)
        BOOST_TEST(read_text(slot) == "record " + std::to_string(i));
    DWORD next = 0, count = 0;
    BOOST_TEST(GetMailslotInfo(slot, nullptr, &next, &count, nullptr));
    BOOST_TEST(next == 0u);
    BOOST_TEST(count == 1u);
    BOOST_TEST(read_text(slot).empty());
    BOOST_TEST(GetMailslotInfo(slot, nullptr, &next, &count, nullptr));
    BOOST_TEST(next == MAILSLOT_NO_MESSAGE);
    BOOST_TEST(count == 0u);
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// DESIGN.md: a too-small buffer fails with 122 and the record stays, whole.
BOOST_AUTO_TEST_CASE(a_small_buffer_keeps_the_record)
{
    const HANDLE slot = make_slot(slot_name);
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(write_text(writer, "twelve bytes"));
    char small[4];
    DWORD read = 77;
    BOOST_TEST(!ReadFile(slot, small, sizeof small, &read, nullptr));
    BOOST_TEST(GetLastError() == ERROR_INSUFFICIENT_BUFFER);
    BOOST_TEST(read == 0u);
    DWORD next = 0;
    BOOST_TEST(GetMailslotInfo(slot, nullptr, &next, nullptr, nullptr));
    BOOST_TEST(next == 12u); // the caller learns its size
    BOOST_TEST(read_text(slot) == "twelve bytes");
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// CreateMailslot's lReadTimeout: 0 returns at once (a failure, 121, as
// Windows really does); N ms waits N ms.
BOOST_AUTO_TEST_CASE(reads_wait_for_the_slot_timeout)
{
    const HANDLE at_once = make_slot(R"(\\.\mailslot\win32\zero)", 0, 0);
    BOOL ok = TRUE;
    read_text(at_once, &ok);
    BOOST_TEST(!ok);
    BOOST_TEST(GetLastError() == ERROR_SEM_TIMEOUT);
    const HANDLE waiting = make_slot(R"(\\.\mailslot\win32\wait)", 0, 300);
    const auto start = std::chrono::steady_clock::now();
    read_text(waiting, &ok);
    const auto waited = std::chrono::steady_clock::now() - start;
    BOOST_TEST(!ok);
    BOOST_TEST(GetLastError() == ERROR_SEM_TIMEOUT);
    BOOST_TEST((waited >= 250ms && waited < 5s));
    BOOST_TEST(CloseHandle(at_once));
    BOOST_TEST(CloseHandle(waiting));
}

BOOST_AUTO_TEST_CASE(a_blocked_read_gets_the_record_written_meanwhile)
{
    const HANDLE slot = make_slot(slot_name);
    std::string got;
    std::thread reader([&] { got = read_text(slot); });
    std::this_thread::sleep_for(50ms); // most likely waiting by now; correct either way
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(write_text(writer, "late"));
    reader.join();
    BOOST_TEST(got == "late");
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// Each handle does what its kind does: a server's reads, a client's writes.
BOOST_AUTO_TEST_CASE(a_handle_does_only_what_its_kind_does)
{
    const HANDLE slot = make_slot(slot_name);
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(!write_text(slot, "to myself"));
    BOOST_TEST(GetLastError() == ERROR_ACCESS_DENIED);
    BOOL ok = TRUE;
    read_text(writer, &ok);
    BOOST_TEST(!ok);
    BOOST_TEST(GetLastError() == ERROR_INVALID_PARAMETER); // DESIGN.md: a writer reads -> 87
    // A handle opened without write access writes nothing.
    const HANDLE read_only = open_slot(slot_name, GENERIC_READ);
    BOOST_REQUIRE(read_only != INVALID_HANDLE_VALUE);
    BOOST_TEST(!write_text(read_only, "x"));
    BOOST_TEST(GetLastError() == ERROR_ACCESS_DENIED);
    // No overlapped I/O.
    OVERLAPPED overlapped{};
    char buffer[8];
    DWORD n = 0;
    BOOST_TEST(!WriteFile(writer, "x", 1, &n, &overlapped));
    BOOST_TEST(GetLastError() == ERROR_NOT_SUPPORTED);
    BOOST_TEST(!ReadFile(slot, buffer, sizeof buffer, &n, &overlapped));
    BOOST_TEST(GetLastError() == ERROR_NOT_SUPPORTED);
    BOOST_TEST(!WriteFile(writer, nullptr, 4, &n, nullptr));
    BOOST_TEST(GetLastError() == ERROR_NOACCESS);
    for (const HANDLE h : {read_only, writer, slot})
        BOOST_TEST(CloseHandle(h));
}

BOOST_AUTO_TEST_CASE(a_record_over_the_maximum_is_refused)
{
    const HANDLE slot = make_slot(slot_name, 8);
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(!write_text(writer, "nine byte"));
    BOOST_TEST(GetLastError() == ERROR_MESSAGE_EXCEEDS_MAX_SIZE);
    BOOST_TEST(write_text(writer, "8 bytes!"));
    DWORD count = 9;
    BOOST_TEST(GetMailslotInfo(slot, nullptr, nullptr, &count, nullptr));
    BOOST_TEST(count == 1u); // nothing of the refused one was queued
    BOOST_TEST(read_text(slot) == "8 bytes!");
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// "the application cannot write more than 424 bytes at a time ... the
// WriteFile function fails and GetLastError returns ERROR_BAD_NETPATH."
BOOST_AUTO_TEST_CASE(broadcasts_over_424_bytes_fail_with_53)
{
    const HANDLE everyone = open_slot(R"(\\*\mailslot\win32\test)");
    BOOST_REQUIRE_MESSAGE(everyone != INVALID_HANDLE_VALUE, "CreateFile: " << GetLastError());
    BOOST_TEST(!write_text(everyone, std::string(425, 'b')));
    BOOST_TEST(GetLastError() == ERROR_BAD_NETPATH);
    BOOST_TEST(CloseHandle(everyone));
}

BOOST_AUTO_TEST_CASE(a_write_to_a_slot_whose_server_closed_finds_no_receiver)
{
    const HANDLE slot = make_slot(slot_name);
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(CloseHandle(slot));
    BOOST_TEST(!write_text(writer, "nobody"));
    BOOST_TEST(GetLastError() == ERROR_FILE_NOT_FOUND);
    // Writers bind to the name: a new server gets the writer's records.
    const HANDLE again = make_slot(slot_name);
    BOOST_TEST(write_text(writer, "back"));
    BOOST_TEST(read_text(again) == "back");
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(again));
}

// GetMailslotInfo: every out-parameter optional; exact at the moment it answers.
BOOST_AUTO_TEST_CASE(get_mailslot_info_reports_the_slot)
{
    const HANDLE slot = make_slot(slot_name, 400, 1500);
    DWORD max_size = 0, next = 0, count = 9, timeout = 0;
    BOOST_TEST(GetMailslotInfo(slot, &max_size, &next, &count, &timeout));
    BOOST_TEST(max_size == 400u);
    BOOST_TEST(next == MAILSLOT_NO_MESSAGE);
    BOOST_TEST(count == 0u);
    BOOST_TEST(timeout == 1500u);
    BOOST_TEST(GetMailslotInfo(slot, nullptr, nullptr, nullptr, nullptr));
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(write_text(writer, "abc"));
    BOOST_TEST(write_text(writer, "defgh"));
    // Through the client's handle too, as DESIGN.md decided.
    BOOST_TEST(GetMailslotInfo(writer, &max_size, &next, &count, &timeout));
    BOOST_TEST(next == 3u);
    BOOST_TEST(count == 2u);
    BOOST_TEST(max_size == 400u);
    BOOST_TEST(!GetMailslotInfo(INVALID_HANDLE_VALUE, nullptr, &next, nullptr, nullptr));
    BOOST_TEST(GetLastError() == ERROR_INVALID_HANDLE);
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// SetMailslotInfo: the server's handle changes the timeout; DESIGN.md: a writer's -> 5.
BOOST_AUTO_TEST_CASE(set_mailslot_info_changes_the_read_timeout)
{
    const HANDLE slot = make_slot(slot_name);
    BOOST_TEST(SetMailslotInfo(slot, 0));
    DWORD timeout = 1;
    BOOST_TEST(GetMailslotInfo(slot, nullptr, nullptr, nullptr, &timeout));
    BOOST_TEST(timeout == 0u);
    BOOL ok = TRUE;
    read_text(slot, &ok); // would wait forever with the old timeout
    BOOST_TEST(!ok);
    BOOST_TEST(GetLastError() == ERROR_SEM_TIMEOUT);
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(!SetMailslotInfo(writer, 10));
    BOOST_TEST(GetLastError() == ERROR_ACCESS_DENIED);
    BOOST_TEST(!SetMailslotInfo(nullptr, 10));
    BOOST_TEST(GetLastError() == ERROR_INVALID_HANDLE);
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

BOOST_AUTO_TEST_CASE(close_handle_closes_once)
{
    const HANDLE slot = make_slot(slot_name);
    BOOST_TEST(CloseHandle(slot));
    BOOST_TEST(!CloseHandle(slot));
    BOOST_TEST(GetLastError() == ERROR_INVALID_HANDLE);
    BOOST_TEST(!CloseHandle(INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_INVALID_HANDLE);
    BOOST_TEST(!CloseHandle(nullptr));
    BOOST_TEST(GetLastError() == ERROR_INVALID_HANDLE);
    BOOL ok = TRUE;
    read_text(slot, &ok); // a closed handle is no handle
    BOOST_TEST(!ok);
    BOOST_TEST(GetLastError() == ERROR_INVALID_HANDLE);
}

BOOST_AUTO_TEST_CASE(a_host_that_went_away_is_a_broken_pipe)
{
    const HANDLE slot = make_slot(slot_name);
    const HANDLE writer = open_slot(slot_name);
    host.process().stop();
    BOOST_TEST(slotbus::test::eventually([&] {
        if (write_text(writer, "after the host"))
            return false;
        return GetLastError() == ERROR_BROKEN_PIPE;
    }));
    BOOL ok = TRUE;
    read_text(slot, &ok);
    BOOST_TEST(!ok);
    BOOST_TEST(GetLastError() == ERROR_BROKEN_PIPE);
    DWORD count = 0;
    BOOST_TEST(!GetMailslotInfo(slot, nullptr, nullptr, &count, nullptr));
    BOOST_TEST(GetLastError() == ERROR_BROKEN_PIPE);
    BOOST_TEST(CloseHandle(writer)); // closing is always possible
    BOOST_TEST(CloseHandle(slot));
}

BOOST_AUTO_TEST_CASE(null_pointers_are_refused_where_windows_refuses_them)
{
    const HANDLE slot = make_slot(slot_name);
    DWORD n = 0;
    BOOST_TEST(!ReadFile(slot, nullptr, 16, &n, nullptr));
    BOOST_TEST(GetLastError() == ERROR_NOACCESS);
    BOOST_TEST(!GetHandleInformation(slot, nullptr));
    BOOST_TEST(GetLastError() == ERROR_INVALID_PARAMETER);
    BOOST_TEST(CloseHandle(slot));
}

// A thread closing a handle another thread waits on ends that wait (Windows
// would leave it waiting; a port that closes to stop a reader gets it stopped).
BOOST_AUTO_TEST_CASE(closing_a_handle_ends_a_read_waiting_on_it)
{
    const HANDLE slot = make_slot(slot_name);
    std::atomic<bool> reading{false};
    std::promise<DWORD> error;
    std::thread reader([&] {
        BOOL ok = TRUE;
        reading = true;
        read_text(slot, &ok);
        error.set_value(ok ? 0 : GetLastError());
    });
    BOOST_REQUIRE(slotbus::test::eventually([&] { return reading.load(); }));
    // The read is most likely waiting by now. If the close came first, the
    // read finds no handle (6): also right, but then the wait went untested.
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(CloseHandle(slot));
    auto ended = error.get_future();
    BOOST_REQUIRE(ended.wait_for(10s) == std::future_status::ready); // no read left waiting
    reader.join();
    const DWORD why = ended.get();
    if (why == ERROR_INVALID_HANDLE)
        BOOST_TEST_MESSAGE("the close came before the read waited: the abort went untested");
    else
        BOOST_TEST(why == ERROR_OPERATION_ABORTED);
    // The slot went with its last handle.
    BOOST_TEST((open_slot(slot_name) == INVALID_HANDLE_VALUE));
    BOOST_TEST(GetLastError() == ERROR_FILE_NOT_FOUND);
}

// Handles usable from any thread, and the last error each thread's own.
BOOST_AUTO_TEST_CASE(handles_work_from_any_thread)
{
    const HANDLE slot = make_slot(slot_name);
    const HANDLE writer = open_slot(slot_name);
    constexpr int threads = 4, each = 250;
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < each; ++i)
                write_text(writer, std::to_string(t) + ":" + std::to_string(i));
        });
    std::vector<int> next(threads, 0);
    int wrong = 0;
    for (int n = 0; n < threads * each; ++n) {
        const auto record = read_text(slot);
        const auto colon = record.find(':');
        const int t = std::stoi(record.substr(0, colon));
        if (std::stoi(record.substr(colon + 1)) != next[t]++)
            ++wrong; // one writer's records keep its order
    }
    for (auto& w : writers)
        w.join();
    BOOST_TEST(wrong == 0);
    // The last error is the thread's own.
    SetLastError(42);
    std::thread other([] {
        SetLastError(7);
        CloseHandle(nullptr);
    });
    other.join();
    BOOST_TEST(GetLastError() == 42u);
    BOOST_TEST(write_text(writer, "ok")); // success leaves it alone, as WriteFile's does
    BOOST_TEST(GetLastError() == 42u);
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// bInheritHandle: a child started after the handle was made inheritable
// reads through it, by the value its parent tells it.
BOOST_AUTO_TEST_CASE(an_inheritable_handle_works_in_a_child)
{
    SECURITY_ATTRIBUTES inherit{sizeof(SECURITY_ATTRIBUTES), nullptr, TRUE};
    const HANDLE slot = CreateMailslotA(slot_name, 0, 5000, &inherit);
    BOOST_REQUIRE(slot != INVALID_HANDLE_VALUE);
    DWORD flags = 0;
    BOOST_TEST(GetHandleInformation(slot, &flags));
    BOOST_TEST(flags == HANDLE_FLAG_INHERIT);
    const HANDLE writer = open_slot(slot_name);
    BOOST_TEST(write_text(writer, "for the child"));
    BOOST_TEST(write_text(writer, "for the parent"));
    const auto value = std::to_string(reinterpret_cast<std::uintptr_t>(slot));
    slotbus::test::child child(WIN32_INHERIT_CHILD_PATH, {value}, {host.env()});
    BOOST_TEST(child.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(child.stdout_text() == "read 13: for the child\n");
    // The child shared the slot's queue: each record is read once.
    BOOST_TEST(read_text(slot) == "for the parent");
    // Its token is spent: a second child needs the handle handed on again.
    // The parent has read now: with a push window it would be handed the
    // next record ahead of any read; with the API's window of 0 the record
    // waits for whichever handle reads, the third child's below.
    slotbus::test::child second(WIN32_INHERIT_CHILD_PATH, {value}, {host.env()});
    BOOST_TEST(second.wait_exit(10s).value_or(-999) == 1);
    BOOST_TEST(second.stdout_text() == "failed 6\n");
    BOOST_TEST(SetHandleInformation(slot, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
    BOOST_TEST(write_text(writer, "for the third"));
    slotbus::test::child third(WIN32_INHERIT_CHILD_PATH, {value}, {host.env()});
    BOOST_TEST(third.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(third.stdout_text() == "read 13: for the third\n");
    BOOST_TEST(CloseHandle(writer));
    BOOST_TEST(CloseHandle(slot));
}

// A client's handle is handed on as its name and its access.
BOOST_AUTO_TEST_CASE(an_inheritable_client_handle_writes_from_a_child)
{
    const HANDLE slot = make_slot(slot_name, 0, 5000);
    SECURITY_ATTRIBUTES inherit{sizeof(SECURITY_ATTRIBUTES), nullptr, TRUE};
    const HANDLE writer =
        CreateFileA(slot_name, GENERIC_WRITE, FILE_SHARE_READ, &inherit, OPEN_EXISTING, 0, nullptr);
    const HANDLE looker =
        CreateFileA(slot_name, GENERIC_READ, FILE_SHARE_READ, &inherit, OPEN_EXISTING, 0, nullptr);
    BOOST_REQUIRE(writer != INVALID_HANDLE_VALUE);
    BOOST_REQUIRE(looker != INVALID_HANDLE_VALUE);
    const auto value = std::to_string(reinterpret_cast<std::uintptr_t>(writer));
    slotbus::test::child child(WIN32_INHERIT_CHILD_PATH, {value, "from the child"}, {host.env()});
    BOOST_TEST(child.wait_exit(10s).value_or(-999) == 0);
    BOOST_TEST(child.stdout_text() == "wrote 14\n");
    BOOST_TEST(read_text(slot) == "from the child");
    // Opened without write access, it writes nothing in the child either.
    const auto read_only = std::to_string(reinterpret_cast<std::uintptr_t>(looker));
    slotbus::test::child second(WIN32_INHERIT_CHILD_PATH, {read_only, "x"}, {host.env()});
    BOOST_TEST(second.wait_exit(10s).value_or(-999) == 1);
    BOOST_TEST(second.stdout_text() == "failed 5\n");
    for (const HANDLE h : {looker, writer, slot})
        BOOST_TEST(CloseHandle(h));
}

BOOST_AUTO_TEST_CASE(a_handle_not_inheritable_is_not_a_childs)
{
    const HANDLE slot = make_slot(slot_name);
    DWORD flags = 7;
    BOOST_TEST(GetHandleInformation(slot, &flags));
    BOOST_TEST(flags == 0u);
    const auto value = std::to_string(reinterpret_cast<std::uintptr_t>(slot));
    slotbus::test::child child(WIN32_INHERIT_CHILD_PATH, {value}, {host.env()});
    BOOST_TEST(child.wait_exit(10s).value_or(-999) == 1);
    BOOST_TEST(child.stdout_text() == "failed 6\n");
    // Made inheritable, then not again: still not the child's.
    BOOST_TEST(SetHandleInformation(slot, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
    BOOST_TEST(SetHandleInformation(slot, HANDLE_FLAG_INHERIT, 0));
    slotbus::test::child second(WIN32_INHERIT_CHILD_PATH, {value}, {host.env()});
    BOOST_TEST(second.wait_exit(10s).value_or(-999) == 1);
    BOOST_TEST(!SetHandleInformation(slot, HANDLE_FLAG_PROTECT_FROM_CLOSE,
                                     HANDLE_FLAG_PROTECT_FROM_CLOSE));
    BOOST_TEST(GetLastError() == ERROR_INVALID_PARAMETER);
    BOOST_TEST(CloseHandle(slot));
}

BOOST_AUTO_TEST_SUITE_END()

// The helpers the samples around mailslots use.
BOOST_AUTO_TEST_CASE(sleep_tick_count_strings_and_memory)
{
    const DWORD before = GetTickCount();
    const ULONGLONG before64 = GetTickCount64();
    Sleep(120);
    BOOST_TEST(static_cast<DWORD>(GetTickCount() - before) >= 100u);
    BOOST_TEST(GetTickCount64() - before64 >= 100u);
    BOOST_TEST(lstrlenA("Message one for mailslot.") == 25);
    BOOST_TEST(lstrlenW(L"wide") == 4);
    BOOST_TEST(lstrlenA(nullptr) == 0);
    BOOST_TEST(lstrlen(TEXT("tchar")) == 5);
    auto* zeroed = static_cast<unsigned char*>(GlobalAlloc(GPTR, 64));
    BOOST_REQUIRE(zeroed);
    BOOST_TEST(zeroed[0] == 0);
    BOOST_TEST(zeroed[63] == 0);
    BOOST_TEST(GlobalFree(zeroed) == nullptr);
    BOOST_TEST(GlobalAlloc(0x0002 /* GMEM_MOVEABLE */, 8) == nullptr);
    BOOST_TEST(GetLastError() == ERROR_INVALID_PARAMETER);
}
