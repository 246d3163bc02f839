/* The network article's client: its CreateFile call lost its argument lines,
 * so the handle is opened as the article says ("you must use the
 * FILE_SHARE_READ mode"), then its WriteFile fragment (network_write.inc,
 * unchanged) writes the record: sizeof a pointer's worth of it, as the
 * article's code does (8 bytes on 64-bit Windows and Linux alike).
 *
 *   win32_seed_network_client [NAME]     default \\.\mailslot\sample_mailslot */
#include <stdio.h>
#include <windows.h>

static int write_one(HANDLE handle)
{
#include "network_write.inc"
    if (err)
        printf("Wrote %u bytes.\n", numWritten);
    return err ? 0 : 1;
}

int main(int argc, char** argv)
{
    HANDLE handle;
    int status;

    handle = CreateFile(argc > 1 ? argv[1] : "\\\\.\\mailslot\\sample_mailslot", GENERIC_WRITE,
                        FILE_SHARE_READ, (LPSECURITY_ATTRIBUTES)NULL, OPEN_EXISTING,
                        FILE_ATTRIBUTE_NORMAL, (HANDLE)NULL);
    if (handle == INVALID_HANDLE_VALUE) {
        printf("CreateFile failed: %d\n", GetLastError());
        return 1;
    }
    status = write_one(handle);
    CloseHandle(handle);
    return status;
}
