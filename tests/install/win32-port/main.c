/* A Windows mailslot program, unchanged: make a slot, write to it through a
 * client handle of its own, read the record back. */
#include <stdio.h>
#include <tchar.h>
#include <windows.h>

int _tmain(void)
{
    LPCTSTR name = TEXT("\\\\.\\mailslot\\ported\\check");
    TCHAR message[] = TEXT("ported from Windows");
    TCHAR buffer[64];
    DWORD written = 0, next = 0, read = 0;
    HANDLE server, client;

    server = CreateMailslot(name, 0, MAILSLOT_WAIT_FOREVER, NULL);
    if (server == INVALID_HANDLE_VALUE) {
        _tprintf(TEXT("CreateMailslot failed with %u\n"), GetLastError());
        return 1;
    }
    client = CreateFile(name, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                        FILE_ATTRIBUTE_NORMAL, NULL);
    if (client == INVALID_HANDLE_VALUE) {
        _tprintf(TEXT("CreateFile failed with %u\n"), GetLastError());
        return 1;
    }
    if (!WriteFile(client, message, (DWORD)sizeof message, &written, NULL) ||
        !GetMailslotInfo(server, NULL, &next, NULL, NULL) ||
        !ReadFile(server, buffer, sizeof buffer, &read, NULL)) {
        _tprintf(TEXT("failed with %u\n"), GetLastError());
        return 1;
    }
    _tprintf(TEXT("%u bytes: %s\n"), next, buffer);
    CloseHandle(client);
    CloseHandle(server);
    return 0;
}
