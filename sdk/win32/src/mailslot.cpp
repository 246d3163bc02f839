// The Windows mailslot API over the SDK. Every HANDLE is an object of its
// own with a connection of its own to the host, as each Windows handle is a
// file object of its own: the host refuses writes from a slot's reader
// connection, yet a process's CreateFile handle must write to the slot it
// created. The connections live on one io_context run by one background
// thread; the API's calls come from any thread and wait there for their
// operation, so handles are usable from any thread.
#include "slotbus/win32/mailslot.h"

#include "slotbus/address.hpp"
#include "slotbus/client_slot.hpp"
#include "slotbus/connection.hpp"
#include "slotbus/error.hpp"
#include "slotbus/server_slot.hpp"
#include "slotbus/slot_name.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <errno.h>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

thread_local DWORD last_error = ERROR_SUCCESS;

BOOL fail(DWORD error)
{
    last_error = error;
    return FALSE;
}

HANDLE fail_handle(DWORD error)
{
    last_error = error;
    return INVALID_HANDLE_VALUE;
}

/// Runs an entry point's work: no exception crosses into a C caller (out
/// of memory, or of threads, is ERROR_NOT_ENOUGH_MEMORY).
template <class R, class F> R guarded(R on_failure, F&& f) noexcept
{
    try {
        return f();
    } catch (...) {
        last_error = ERROR_NOT_ENOUGH_MEMORY;
        return on_failure;
    }
}

/// The Windows number for an SDK error: slotbus's own are Windows numbers
/// already; a cancelled wait is an aborted operation; anything else is the
/// connection's failure.
DWORD windows_error(const std::error_code& ec)
{
    if (ec.category() == slotbus::error_category())
        return static_cast<DWORD>(ec.value());
    if (ec == std::errc::operation_canceled)
        return ERROR_OPERATION_ABORTED;
    return ERROR_BROKEN_PIPE;
}

/// A name in the full form Windows takes, `\\X\mailslot\...` (either slash):
/// CreateFile treats anything else as a file, and CreateMailslot refuses it.
bool full_mailslot_form(std::string_view name)
{
    const auto separator = [](char c) { return c == '\\' || c == '/'; };
    if (name.size() < 2 || !separator(name[0]) || !separator(name[1]))
        return false;
    std::size_t i = 2;
    while (i < name.size() && !separator(name[i]))
        ++i; // the host, domain, `.` or `*`
    constexpr std::string_view mailslot = "mailslot";
    if (i == 2 || name.size() < i + 1 + mailslot.size())
        return false;
    for (std::size_t k = 0; k < mailslot.size(); ++k)
        if (std::tolower(static_cast<unsigned char>(name[i + 1 + k])) != mailslot[k])
            return false;
    const auto after = i + 1 + mailslot.size();
    return after == name.size() || separator(name[after]);
}

/// UTF-8 of a wide (UTF-32 on Linux) name; nullopt for what is not a character.
std::optional<std::string> utf8_of(const WCHAR* wide)
{
    std::string out;
    for (; *wide; ++wide) {
        const auto c = static_cast<std::uint32_t>(*wide);
        if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return std::nullopt;
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xc0 | c >> 6);
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xe0 | c >> 12);
            out += static_cast<char>(0x80 | (c >> 6 & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | c >> 18);
            out += static_cast<char>(0x80 | (c >> 12 & 0x3f));
            out += static_cast<char>(0x80 | (c >> 6 & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }
    return out;
}

/// One Windows handle: a mailslot server (CreateMailslot) or client (CreateFile).
struct mailslot_handle {
    mailslot_handle(boost::asio::any_io_executor executor, slotbus::connection_options options)
        : bus(std::move(executor), std::move(options))
    {
    }

    slotbus::connection bus;
    slotbus::server_slot server; // open for a server handle
    slotbus::client_slot client; // open for a client handle
    bool may_write = false;      // CreateFile asked for write access (set before it is shared)
    std::string name;            // as given, for a client handle handed to a child
    std::atomic<bool> inheritable{false};
    // Calls under way hold it shared; CloseHandle takes it whole, ending the
    // reads that wait (they fail with ERROR_OPERATION_ABORTED) until it can.
    std::shared_timed_mutex in_use;
    bool closed = false; // under in_use
};

/// Handles a child process takes over: `$SLOTBUS_WIN32_HANDLES`, entries of
/// `VALUE=r:TOKEN` (a reader's duplicate token) or `VALUE=w:HEXNAME` (a
/// client's name), separated by `;`.
constexpr const char* inherited_variable = "SLOTBUS_WIN32_HANDLES";

std::string hex_of(std::string_view bytes)
{
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string unhex(std::string_view hex)
{
    std::string out;
    auto value = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(value(hex[i]) << 4 | value(hex[i + 1]));
    return out;
}

/// What a child takes over of `h`: a fresh duplicate token for a reader (a
/// token serves one child, for the host's 60 s), the name for a client;
/// empty with `ec` set when the host gives no token.
std::string entry_for(mailslot_handle& h, std::error_code& ec)
{
    if (h.server.is_open()) {
        auto token = h.server.duplicate(ec);
        return ec ? std::string() : "r:" + token;
    }
    return (h.may_write ? "w:" : "o:") + hex_of(h.name);
}

/// The process's handles and the thread their connections live on. Built
/// at the first call into the API; a process's exit closes what is left.
class runtime {
public:
    /// Never destroyed: a thread may be in a call while the process exits,
    /// and the exit closes the handles' sockets, which ends their slots as
    /// a Windows process's exit closes its handles.
    static runtime& get()
    {
        static runtime& instance = *new runtime;
        return instance;
    }

    /// A new handle, its connection not made yet.
    std::shared_ptr<mailslot_handle> new_handle()
    {
        std::lock_guard lock(mutex_); // the environment is read where it is written
        return make_handle();
    }

    /// $SLOTBUS_ADDRESS or the default socket, as every slotbus client finds its host.
    std::string address()
    {
        std::lock_guard lock(mutex_);
        return slotbus::default_address();
    }

    HANDLE add(std::shared_ptr<mailslot_handle> h)
    {
        std::lock_guard lock(mutex_);
        const auto value = next_;
        next_ += 4; // Windows' handles are multiples of 4; never reused here
        handles_.emplace(value, std::move(h));
        return reinterpret_cast<HANDLE>(value);
    }

    std::shared_ptr<mailslot_handle> find(HANDLE h)
    {
        std::lock_guard lock(mutex_);
        const auto it = handles_.find(reinterpret_cast<std::uintptr_t>(h));
        return it == handles_.end() ? nullptr : it->second;
    }

    std::shared_ptr<mailslot_handle> take(HANDLE h)
    {
        std::lock_guard lock(mutex_);
        const auto it = handles_.find(reinterpret_cast<std::uintptr_t>(h));
        if (it == handles_.end())
            return nullptr;
        auto taken = std::move(it->second);
        handles_.erase(it);
        if (inherited_.erase(reinterpret_cast<std::uintptr_t>(h)))
            export_inherited();
        return taken;
    }

    /// What a child started from now on takes over as `h` (empty: nothing);
    /// nothing once `h` is closed.
    void set_inherited(HANDLE h, std::string entry)
    {
        const auto value = reinterpret_cast<std::uintptr_t>(h);
        std::lock_guard lock(mutex_);
        if (entry.empty())
            inherited_.erase(value);
        else if (handles_.contains(value))
            inherited_[value] = std::move(entry);
        export_inherited();
    }

    /// Ends the handle's reads, waits for its other calls, closes it.
    static void close(mailslot_handle& h)
    {
        std::unique_lock lock(h.in_use, std::defer_lock);
        for (int tries = 0; !lock.try_lock_for(std::chrono::milliseconds(20)); ++tries) {
            h.server.cancel(); // again: a read may have started after the last one
            if (tries == 5)
                h.bus.close(); // a write held by back-pressure: its connection goes
        }
        h.closed = true;
        std::error_code ignored;
        h.server.close(ignored);
        h.client.close(ignored);
        h.bus.close();
    }

private:
    runtime() : work_(io_.get_executor()), thread_([this] { io_.run(); }) { take_inherited(); }
    ~runtime() = delete;

    void take_inherited()
    {
        const char* text = std::getenv(inherited_variable);
        if (!text)
            return;
        const std::string entries = text;
        ::unsetenv(inherited_variable); // a grandchild gets what this process hands on
        std::size_t at = 0;
        while (at < entries.size()) {
            auto end = entries.find(';', at);
            if (end == std::string::npos)
                end = entries.size();
            adopt(std::string_view(entries).substr(at, end - at));
            at = end + 1;
        }
        for (const auto value : adopted_) {
            std::error_code ec;
            if (auto entry = entry_for(*handles_.at(value), ec); !ec)
                inherited_[value] = std::move(entry);
        }
        export_inherited();
    }

    /// One inherited handle, at the value the parent gave it; an entry that
    /// no longer works (a spent or expired token, no host) is left out.
    void adopt(std::string_view entry)
    {
        const auto equals = entry.find('=');
        if (equals == std::string_view::npos || entry.size() < equals + 3 ||
            entry[equals + 2] != ':')
            return;
        const auto value = std::strtoull(std::string(entry.substr(0, equals)).c_str(), nullptr, 10);
        if (value == 0 || value % 4 != 0)
            return;
        auto h = make_handle(); // in the constructor: nobody else holds the lock yet
        std::error_code ec;
        h->bus.connect(slotbus::default_address(), ec);
        if (ec)
            return;
        const auto what = entry[equals + 1];
        const auto rest = entry.substr(equals + 3);
        if (what == 'r') {
            h->server = slotbus::server_slot::attach(h->bus, rest, ec);
        } else if (what == 'w' || what == 'o') { // a client that may write, or not
            h->name = unhex(rest);
            h->client = slotbus::client_slot::open(h->bus, h->name, ec);
            h->may_write = what == 'w';
        } else {
            return;
        }
        if (ec)
            return;
        // Still inheritable, as on Windows: this process's children get it
        // too (a reader with a token of its own, minted when the runtime is up).
        h->inheritable = true;
        handles_.emplace(value, h);
        adopted_.push_back(value);
        next_ = std::max<std::uintptr_t>(next_, value + 4);
    }

    /// A handle with its connection's options; `mutex_` held, or not yet shared.
    std::shared_ptr<mailslot_handle> make_handle()
    {
        // Window 0: a record goes to the handle that reads it, as on Windows,
        // not ahead to one that read before (an inherited handle shares its queue).
        return std::make_shared<mailslot_handle>(
            io_.get_executor(),
            slotbus::connection_options{std::string("win32:") + program_invocation_short_name, 0,
                                        slotbus::plugin_token_from_environment(),
                                        slotbus::tls_options_from_environment()});
    }

    void export_inherited()
    {
        std::string entries;
        for (const auto& [value, entry] : inherited_)
            entries += (entries.empty() ? "" : ";") + std::to_string(value) + "=" + entry;
        if (entries.empty())
            ::unsetenv(inherited_variable);
        else
            ::setenv(inherited_variable, entries.c_str(), 1);
    }

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::mutex mutex_;
    std::unordered_map<std::uintptr_t, std::shared_ptr<mailslot_handle>> handles_;
    std::unordered_map<std::uintptr_t, std::string> inherited_;
    std::vector<std::uintptr_t> adopted_; // taken over from the parent, handed on once up
    std::uintptr_t next_ = 0x100;
    std::thread thread_; // last: it starts once the rest is built
};

/// Makes `h` a child's from now on.
BOOL hand_on(HANDLE value, mailslot_handle& h)
{
    std::error_code ec;
    auto entry = entry_for(h, ec);
    if (ec)
        return fail(windows_error(ec));
    h.inheritable = true;
    runtime::get().set_inherited(value, std::move(entry));
    return TRUE;
}

/// A handle's calls, with the handle held against CloseHandle meanwhile.
template <class F> BOOL with_handle(HANDLE value, F&& f)
{
    return guarded(BOOL(FALSE), [&] {
        auto h = runtime::get().find(value);
        if (!h)
            return fail(ERROR_INVALID_HANDLE);
        std::shared_lock lock(h->in_use);
        if (h->closed)
            return fail(ERROR_INVALID_HANDLE);
        return f(*h);
    });
}

/// A new handle connected to the host: null (and the error set) when none answers.
std::shared_ptr<mailslot_handle> connected_handle()
{
    auto& rt = runtime::get();
    auto h = rt.new_handle();
    std::error_code ec;
    h->bus.connect(rt.address(), ec);
    if (ec) {
        // No host on the socket: the service is not running. A host that is
        // not trusted, or refuses: its own number.
        last_error = ec.category() == slotbus::error_category() ? windows_error(ec)
                                                                : ERROR_SERVICE_NOT_ACTIVE;
        return nullptr;
    }
    return h;
}

HANDLE create_mailslot(const char* name, DWORD max_message_size, DWORD read_timeout,
                       const SECURITY_ATTRIBUTES* security)
{
    return guarded(INVALID_HANDLE_VALUE, [&] {
        if (!name || !full_mailslot_form(name))
            return fail_handle(ERROR_INVALID_NAME);
        std::error_code ec;
        slotbus::slot_name::parse(name, ec);
        if (ec)
            return fail_handle(windows_error(ec));
        auto h = connected_handle();
        if (!h)
            return INVALID_HANDLE_VALUE;
        h->server = slotbus::server_slot::create(h->bus, name, max_message_size, read_timeout, ec);
        if (ec)
            return fail_handle(windows_error(ec));
        const HANDLE value = runtime::get().add(h);
        if (security && security->bInheritHandle && !hand_on(value, *h)) {
            const auto why = last_error;
            CloseHandle(value);
            return fail_handle(why);
        }
        return value;
    });
}

HANDLE create_file(const char* name, DWORD access, DWORD share, const SECURITY_ATTRIBUTES* security,
                   DWORD disposition, DWORD flags)
{
    return guarded(INVALID_HANDLE_VALUE, [&] {
        if (!name)
            return fail_handle(ERROR_INVALID_PARAMETER);
        if (!full_mailslot_form(name))
            return fail_handle(ERROR_NOT_SUPPORTED); // a file, a pipe, a device: not here
        if (disposition != OPEN_EXISTING)
            return fail_handle(ERROR_INVALID_PARAMETER); // a mailslot is made by CreateMailslot
        if (flags & FILE_FLAG_OVERLAPPED)
            return fail_handle(ERROR_NOT_SUPPORTED);
        // "An application must specify the FILE_SHARE_READ flag": the server
        // holds the slot open for reading.
        if (!(share & FILE_SHARE_READ))
            return fail_handle(ERROR_SHARING_VIOLATION);
        std::error_code ec;
        slotbus::slot_name::parse(name, ec);
        if (ec)
            return fail_handle(windows_error(ec));
        auto h = connected_handle();
        if (!h)
            return INVALID_HANDLE_VALUE;
        h->client = slotbus::client_slot::open(h->bus, name, ec);
        if (ec)
            return fail_handle(windows_error(ec));
        h->name = name;
        h->may_write = (access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA)) != 0;
        const HANDLE value = runtime::get().add(h);
        if (security && security->bInheritHandle)
            hand_on(value, *h);     // a client's entry is its name: nothing to fail
        last_error = ERROR_SUCCESS; // as Windows' CreateFile does for OPEN_EXISTING
        return value;
    });
}

} // namespace

extern "C" {

HANDLE WINAPI CreateMailslotA(LPCSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout,
                              LPSECURITY_ATTRIBUTES lpSecurityAttributes)
{
    return create_mailslot(lpName, nMaxMessageSize, lReadTimeout, lpSecurityAttributes);
}

HANDLE WINAPI CreateMailslotW(LPCWSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout,
                              LPSECURITY_ATTRIBUTES lpSecurityAttributes)
{
    if (!lpName)
        return fail_handle(ERROR_INVALID_NAME);
    const auto name = utf8_of(lpName);
    if (!name)
        return fail_handle(ERROR_INVALID_NAME);
    return create_mailslot(name->c_str(), nMaxMessageSize, lReadTimeout, lpSecurityAttributes);
}

HANDLE WINAPI CreateFileA(LPCSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
                          LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition,
                          DWORD dwFlagsAndAttributes, HANDLE)
{
    return create_file(lpFileName, dwDesiredAccess, dwShareMode, lpSecurityAttributes,
                       dwCreationDisposition, dwFlagsAndAttributes);
}

HANDLE WINAPI CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
                          LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition,
                          DWORD dwFlagsAndAttributes, HANDLE)
{
    if (!lpFileName)
        return fail_handle(ERROR_INVALID_PARAMETER);
    const auto name = utf8_of(lpFileName);
    if (!name)
        return fail_handle(ERROR_INVALID_NAME);
    return create_file(name->c_str(), dwDesiredAccess, dwShareMode, lpSecurityAttributes,
                       dwCreationDisposition, dwFlagsAndAttributes);
}

BOOL WINAPI GetMailslotInfo(HANDLE hMailslot, LPDWORD lpMaxMessageSize, LPDWORD lpNextSize,
                            LPDWORD lpMessageCount, LPDWORD lpReadTimeout)
{
    return with_handle(hMailslot, [&](mailslot_handle& h) {
        // Through either handle, as DESIGN.md decided (Windows answers
        // through the server's only).
        std::error_code ec;
        const auto info = h.server.is_open() ? h.server.info(ec) : h.client.info(ec);
        if (ec)
            return fail(windows_error(ec));
        if (lpMaxMessageSize)
            *lpMaxMessageSize = info.max_message_size;
        if (lpNextSize)
            *lpNextSize = info.next_size;
        if (lpMessageCount)
            *lpMessageCount = info.message_count;
        if (lpReadTimeout)
            *lpReadTimeout = info.read_timeout;
        return TRUE;
    });
}

BOOL WINAPI SetMailslotInfo(HANDLE hMailslot, DWORD lReadTimeout)
{
    return with_handle(hMailslot, [&](mailslot_handle& h) {
        if (!h.server.is_open())
            return fail(ERROR_ACCESS_DENIED); // a client's handle changes no timeout
        std::error_code ec;
        h.server.set_read_timeout(lReadTimeout, ec);
        if (ec)
            return fail(windows_error(ec));
        return TRUE;
    });
}

BOOL WINAPI ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
                     LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped)
{
    if (lpNumberOfBytesRead)
        *lpNumberOfBytesRead = 0;
    if (lpOverlapped)
        return fail(ERROR_NOT_SUPPORTED);
    return with_handle(hFile, [&](mailslot_handle& h) {
        if (!h.server.is_open())
            return fail(ERROR_INVALID_PARAMETER); // a client's handle reads nothing
        if (!lpBuffer && nNumberOfBytesToRead)
            return fail(ERROR_NOACCESS);
        std::error_code ec;
        // A record larger than the buffer stays queued, whole: 122.
        const auto size = h.server.read(boost::asio::buffer(lpBuffer, nNumberOfBytesToRead), ec);
        if (ec)
            return fail(windows_error(ec));
        if (lpNumberOfBytesRead)
            *lpNumberOfBytesRead = static_cast<DWORD>(size);
        return TRUE;
    });
}

BOOL WINAPI WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite,
                      LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped)
{
    if (lpNumberOfBytesWritten)
        *lpNumberOfBytesWritten = 0;
    if (lpOverlapped)
        return fail(ERROR_NOT_SUPPORTED);
    return with_handle(hFile, [&](mailslot_handle& h) {
        if (h.server.is_open() || !h.may_write)
            return fail(ERROR_ACCESS_DENIED); // a server's handle only reads
        if (!lpBuffer && nNumberOfBytesToWrite)
            return fail(ERROR_NOACCESS);
        std::error_code ec;
        h.client.write(boost::asio::buffer(lpBuffer, nNumberOfBytesToWrite), ec);
        if (ec)
            return fail(windows_error(ec));
        if (lpNumberOfBytesWritten)
            *lpNumberOfBytesWritten = nNumberOfBytesToWrite;
        return TRUE;
    });
}

BOOL WINAPI CloseHandle(HANDLE hObject)
{
    return guarded(BOOL(FALSE), [&] {
        auto h = runtime::get().take(hObject);
        if (!h)
            return fail(ERROR_INVALID_HANDLE);
        runtime::close(*h);
        return BOOL(TRUE);
    });
}

BOOL WINAPI GetHandleInformation(HANDLE hObject, LPDWORD lpdwFlags)
{
    return with_handle(hObject, [&](mailslot_handle& h) {
        if (!lpdwFlags)
            return fail(ERROR_INVALID_PARAMETER);
        *lpdwFlags = h.inheritable ? HANDLE_FLAG_INHERIT : 0;
        return TRUE;
    });
}

BOOL WINAPI SetHandleInformation(HANDLE hObject, DWORD dwMask, DWORD dwFlags)
{
    return with_handle(hObject, [&](mailslot_handle& h) {
        if (dwMask & ~HANDLE_FLAG_INHERIT)
            return fail(ERROR_INVALID_PARAMETER); // no protection from close here
        if (!(dwMask & HANDLE_FLAG_INHERIT))
            return TRUE;
        if (dwFlags & HANDLE_FLAG_INHERIT)
            return hand_on(hObject, h); // again: a fresh token for the next child
        h.inheritable = false;
        runtime::get().set_inherited(hObject, {});
        return TRUE;
    });
}

DWORD WINAPI GetLastError(void)
{
    return last_error;
}

void WINAPI SetLastError(DWORD dwErrCode)
{
    last_error = dwErrCode;
}

void WINAPI Sleep(DWORD dwMilliseconds)
{
    if (dwMilliseconds == INFINITE)
        for (;;)
            std::this_thread::sleep_for(std::chrono::hours(24));
    std::this_thread::sleep_for(std::chrono::milliseconds(dwMilliseconds));
}

ULONGLONG WINAPI GetTickCount64(void)
{
    // Milliseconds since the machine started, suspended time included, as Windows counts.
    timespec now{};
    ::clock_gettime(CLOCK_BOOTTIME, &now);
    return static_cast<ULONGLONG>(now.tv_sec) * 1000 +
           static_cast<ULONGLONG>(now.tv_nsec) / 1000000;
}

DWORD WINAPI GetTickCount(void)
{
    return static_cast<DWORD>(GetTickCount64()); // wraps after 49.7 days, as Windows' does
}

int WINAPI lstrlenA(LPCSTR lpString)
{
    return lpString ? static_cast<int>(std::strlen(lpString)) : 0;
}

int WINAPI lstrlenW(LPCWSTR lpString)
{
    return lpString ? static_cast<int>(std::wcslen(lpString)) : 0;
}

HGLOBAL WINAPI GlobalAlloc(UINT uFlags, SIZE_T dwBytes)
{
    if (uFlags & ~static_cast<UINT>(GMEM_ZEROINIT)) {
        last_error = ERROR_INVALID_PARAMETER; // movable memory has no use without GlobalLock
        return nullptr;
    }
    void* memory = (uFlags & GMEM_ZEROINIT) ? std::calloc(1, dwBytes ? dwBytes : 1)
                                            : std::malloc(dwBytes ? dwBytes : 1);
    if (!memory)
        last_error = ERROR_NOT_ENOUGH_MEMORY;
    return memory;
}

HGLOBAL WINAPI GlobalFree(HGLOBAL hMem)
{
    std::free(hMem);
    return nullptr;
}

} // extern "C"
