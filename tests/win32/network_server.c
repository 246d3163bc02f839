/* The network article's server, from its fragments that survived whole
 * (network_*.inc, taken out of the seed unchanged): the slot is made with the
 * arguments the article describes (its own call lost its argument lines),
 * then each record is found with its GetMailslotInfo fragment and read with
 * its GlobalAlloc + ReadFile fragment, and printed.
 *
 *   win32_seed_network_server COUNT      reads COUNT records, then exits 0 */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

int main(int argc, char** argv)
{
    int wanted = argc > 1 ? atoi(argv[1]) : 1;
    int got = 0;
    HANDLE handle;

    /* "allowing any size records ... we'll wait forever when reading a record" */
    handle = CreateMailslot(TEXT("\\\\.\\mailslot\\sample_mailslot"), 0, MAILSLOT_WAIT_FOREVER,
                            (LPSECURITY_ATTRIBUTES)NULL);
    if (handle == INVALID_HANDLE_VALUE) {
        printf("CreateMailslot failed: %d\n", GetLastError());
        return 1;
    }
    {
#include "network_set_timeout.inc"
    } printf("Mailslot created successfully.\n");
    fflush(stdout);

    while (got < wanted) {
#include "network_next_size.inc"
        if (!err || msgSize == (DWORD)MAILSLOT_NO_MESSAGE) {
            Sleep(20); /* the article polls: GetMailslotInfo never waits */
            continue;
        }
        {
#include "network_read.inc"
            if (err && buffer) {
                printf("Record: %.*s\n", (int)numRead, (const char*)buffer);
                ++got;
            }
            GlobalFree(buffer);
        }
        fflush(stdout);
    }
    CloseHandle(handle);
    return 0;
}
