/* The Windows mailslot API over slotbus, for C and C++: what a program
 * written for Windows' mailslots uses, with Windows' types, constants and
 * error numbers, so it compiles and runs unchanged (docs/win32.md).
 *
 * Link slotbus::win32 (CMake) and `#include <windows.h>`, or include this
 * header itself. Mailslot handles only: CreateFile on anything else fails.
 * Every handle is usable from any thread. No overlapped I/O: a non-NULL
 * OVERLAPPED fails with ERROR_NOT_SUPPORTED. */
#ifndef SLOTBUS_WIN32_MAILSLOT_H
#define SLOTBUS_WIN32_MAILSLOT_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLOTBUS_WIN32_API __attribute__((visibility("default")))

/* Calling conventions mean nothing on x86-64 and ARM64 Linux. */
#ifndef WINAPI
#define WINAPI
#endif
#ifndef CALLBACK
#define CALLBACK
#endif
#ifndef APIENTRY
#define APIENTRY
#endif
#ifndef WINBASEAPI
#define WINBASEAPI
#endif
#ifndef VOID
#define VOID void
#endif

/* Windows' widths, whatever the platform's long is (LLP64 against LP64). */
typedef int BOOL;
typedef unsigned char BYTE;
typedef uint16_t WORD;
typedef uint32_t DWORD;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef unsigned int UINT;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef intptr_t LONG_PTR;
typedef uintptr_t ULONG_PTR;
typedef uintptr_t DWORD_PTR;
typedef size_t SIZE_T;
typedef BOOL* LPBOOL;
typedef BYTE* LPBYTE;
typedef DWORD* LPDWORD;
typedef LONG* LPLONG;
typedef void* LPVOID;
typedef const void* LPCVOID;
typedef void* HANDLE;
typedef HANDLE* PHANDLE;
typedef HANDLE* LPHANDLE;
typedef HANDLE HGLOBAL;

/* Characters: CHAR is a byte; WCHAR is the platform's wchar_t (4 bytes on
 * Linux, where Windows has 2), so L"" literals and wcs*() work as written. */
typedef char CHAR;
typedef wchar_t WCHAR;
typedef CHAR* LPSTR;
typedef const CHAR* LPCSTR;
typedef WCHAR* LPWSTR;
typedef const WCHAR* LPCWSTR;
#ifdef UNICODE
typedef WCHAR TCHAR;
#define __TEXT(quote) L##quote
#else
typedef CHAR TCHAR;
#define __TEXT(quote) quote
#endif
#define TEXT(quote) __TEXT(quote)
typedef TCHAR* LPTSTR;
typedef const TCHAR* LPCTSTR;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor; /* ignored: the host's policy decides who may do what */
    BOOL bInheritHandle;         /* a child process started after this may use the handle */
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

/* Declared so programs that mention it compile; passing one is refused. */
typedef struct _OVERLAPPED {
    ULONG_PTR Internal;
    ULONG_PTR InternalHigh;
    DWORD Offset;
    DWORD OffsetHigh;
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)

#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define GENERIC_EXECUTE 0x20000000u
#define GENERIC_ALL 0x10000000u
#define FILE_READ_DATA 0x0001u
#define FILE_WRITE_DATA 0x0002u

#define FILE_SHARE_READ 0x00000001u
#define FILE_SHARE_WRITE 0x00000002u
#define FILE_SHARE_DELETE 0x00000004u

#define CREATE_NEW 1
#define CREATE_ALWAYS 2
#define OPEN_EXISTING 3
#define OPEN_ALWAYS 4
#define TRUNCATE_EXISTING 5

#define FILE_ATTRIBUTE_NORMAL 0x00000080u
#define FILE_FLAG_OVERLAPPED 0x40000000u

#define MAILSLOT_WAIT_FOREVER ((DWORD)-1)
#define MAILSLOT_NO_MESSAGE ((DWORD)-1)

#define HANDLE_FLAG_INHERIT 0x00000001u
#define HANDLE_FLAG_PROTECT_FROM_CLOSE 0x00000002u

#define GMEM_FIXED 0x0000u
#define GMEM_ZEROINIT 0x0040u
#define GPTR (GMEM_FIXED | GMEM_ZEROINIT)

#define INFINITE 0xFFFFFFFFu

/* The error numbers slotbus reports: Windows' own (sdk/include/slotbus/error.hpp). */
#define ERROR_SUCCESS 0L
#define NO_ERROR 0L
#define ERROR_INVALID_FUNCTION 1L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_TOO_MANY_OPEN_FILES 4L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_INVALID_DATA 13L
#define ERROR_SHARING_VIOLATION 32L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_BAD_NETPATH 53L
#define ERROR_NETNAME_DELETED 64L
#define ERROR_NETWORK_ACCESS_DENIED 65L
#define ERROR_REQ_NOT_ACCEP 71L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_BROKEN_PIPE 109L
#define ERROR_SEM_TIMEOUT 121L
#define ERROR_INSUFFICIENT_BUFFER 122L
#define ERROR_INVALID_NAME 123L
#define ERROR_ALREADY_EXISTS 183L
#define ERROR_FILENAME_EXCED_RANGE 206L
#define ERROR_OPERATION_ABORTED 995L
#define ERROR_NOACCESS 998L
#define ERROR_SERVICE_NOT_ACTIVE 1062L
#define ERROR_NOT_ENOUGH_QUOTA 1816L
#define ERROR_MESSAGE_EXCEEDS_MAX_SIZE 4336L

/* The mailslot server: a slot this process reads. */
SLOTBUS_WIN32_API HANDLE WINAPI CreateMailslotA(LPCSTR lpName, DWORD nMaxMessageSize,
                                                DWORD lReadTimeout,
                                                LPSECURITY_ATTRIBUTES lpSecurityAttributes);
SLOTBUS_WIN32_API HANDLE WINAPI CreateMailslotW(LPCWSTR lpName, DWORD nMaxMessageSize,
                                                DWORD lReadTimeout,
                                                LPSECURITY_ATTRIBUTES lpSecurityAttributes);
SLOTBUS_WIN32_API BOOL WINAPI GetMailslotInfo(HANDLE hMailslot, LPDWORD lpMaxMessageSize,
                                              LPDWORD lpNextSize, LPDWORD lpMessageCount,
                                              LPDWORD lpReadTimeout);
SLOTBUS_WIN32_API BOOL WINAPI SetMailslotInfo(HANDLE hMailslot, DWORD lReadTimeout);

/* A mailslot client: \\.\mailslot\NAME, \\HOST\mailslot\NAME, \\DOMAIN\... or \\*\... */
SLOTBUS_WIN32_API HANDLE WINAPI CreateFileA(LPCSTR lpFileName, DWORD dwDesiredAccess,
                                            DWORD dwShareMode,
                                            LPSECURITY_ATTRIBUTES lpSecurityAttributes,
                                            DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes,
                                            HANDLE hTemplateFile);
SLOTBUS_WIN32_API HANDLE WINAPI CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess,
                                            DWORD dwShareMode,
                                            LPSECURITY_ATTRIBUTES lpSecurityAttributes,
                                            DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes,
                                            HANDLE hTemplateFile);

/* Either handle. */
SLOTBUS_WIN32_API BOOL WINAPI ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
                                       LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped);
SLOTBUS_WIN32_API BOOL WINAPI WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite,
                                        LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped);
SLOTBUS_WIN32_API BOOL WINAPI CloseHandle(HANDLE hObject);
SLOTBUS_WIN32_API BOOL WINAPI GetHandleInformation(HANDLE hObject, LPDWORD lpdwFlags);
SLOTBUS_WIN32_API BOOL WINAPI SetHandleInformation(HANDLE hObject, DWORD dwMask, DWORD dwFlags);

/* The calling thread's last error. */
SLOTBUS_WIN32_API DWORD WINAPI GetLastError(void);
SLOTBUS_WIN32_API void WINAPI SetLastError(DWORD dwErrCode);

/* What the samples around mailslots use besides. */
SLOTBUS_WIN32_API void WINAPI Sleep(DWORD dwMilliseconds);
SLOTBUS_WIN32_API DWORD WINAPI GetTickCount(void);
SLOTBUS_WIN32_API ULONGLONG WINAPI GetTickCount64(void);
SLOTBUS_WIN32_API int WINAPI lstrlenA(LPCSTR lpString);
SLOTBUS_WIN32_API int WINAPI lstrlenW(LPCWSTR lpString);
SLOTBUS_WIN32_API HGLOBAL WINAPI GlobalAlloc(UINT uFlags, SIZE_T dwBytes);
SLOTBUS_WIN32_API HGLOBAL WINAPI GlobalFree(HGLOBAL hMem);

#ifdef UNICODE
#define CreateMailslot CreateMailslotW
#define CreateFile CreateFileW
#define lstrlen lstrlenW
#else
#define CreateMailslot CreateMailslotA
#define CreateFile CreateFileA
#define lstrlen lstrlenA
#endif

#ifdef __cplusplus
}
#endif

#endif /* SLOTBUS_WIN32_MAILSLOT_H */
