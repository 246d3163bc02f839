/* <tchar.h> for a program ported from Windows: the generic-text names over
 * the C library, narrow unless UNICODE (or _UNICODE) is defined. */
#ifndef SLOTBUS_WIN32_TCHAR_H
#define SLOTBUS_WIN32_TCHAR_H

#include <slotbus/win32/mailslot.h>

#include <stdio.h>
#include <string.h>
#include <strings.h> /* strcasecmp */
#include <wchar.h>

#if defined(_UNICODE) && !defined(UNICODE)
#error "define UNICODE with _UNICODE: TCHAR and _TCHAR would differ"
#endif

#ifdef UNICODE
typedef WCHAR _TCHAR;
#define _T(x) L##x
#define _tmain wmain_is_not_on_linux_use_main
#define _tprintf wprintf
#define _ftprintf fwprintf
#define _stprintf swprintf
#define _tcslen wcslen
#define _tcscpy wcscpy
#define _tcsncpy wcsncpy
#define _tcscat wcscat
#define _tcscmp wcscmp
#define _tcsicmp wcscasecmp
#else
typedef CHAR _TCHAR;
#define _T(x) x
#define _tmain main
#define _tprintf printf
#define _ftprintf fprintf
#define _stprintf sprintf
#define _tcslen strlen
#define _tcscpy strcpy
#define _tcsncpy strncpy
#define _tcscat strcat
#define _tcscmp strcmp
#define _tcsicmp strcasecmp
#endif
#define _TEXT(x) _T(x)

#endif /* SLOTBUS_WIN32_TCHAR_H */
