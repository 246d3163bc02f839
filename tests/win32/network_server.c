/* The network article's server, from its fragments that survived whole
 * (network_*.inc, taken out of the seed unchanged): the slot is made with the
 * arguments the article describes (its own call lost its argument lines),
 * then each record is found with its GetMailslotInfo fragment and read with
 * its GlobalAlloc + ReadFile fragment, and printed.
 *
 *   win32_seed_network_server [COUNT [NAME]]   reads COUNT records (1), then exits 0;
 *                                              NAME: \\.\mailslot\sample_mailslot */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

static void set_timeout(HANDLE handle)
{
#include "network_set_timeout.inc"
}

/* One pass of the article's reading: 1 when a record was read (and printed). */
static int read_one(HANDLE handle)
{
#include "network_next_size.inc"
    if (!err || msgSize == (DWORD)MAILSLOT_NO_MESSAGE)
        return 0;
    {
#include "network_read.inc"
        if (err && buffer)
            printf("Record: %.*s\n", (int)numRead, (const char*)buffer);
        GlobalFree(buffer);
        return err && buffer;
    }
}

int main(int argc, char** argv)
{
    int wanted = argc > 1 ? atoi(argv[1]) : 1;
    int got = 0;
    HANDLE handle;

    /* "allowing any size records ... we'll wait forever when reading a record" */
    handle = CreateMailslot(argc > 2 ? argv[2] : "\\\\.\\mailslot\\sample_mailslot", 0,
                            MAILSLOT_WAIT_FOREVER, (LPSECURITY_ATTRIBUTES)NULL);
    if (handle == INVALID_HANDLE_VALUE) {
        printf("CreateMailslot failed: %d\n", GetLastError());
        return 1;
    }
    set_timeout(handle);
    printf("Mailslot created successfully.\n");
    fflush(stdout);
    while (got < wanted) {
        if (read_one(handle))
            ++got;
        else
            Sleep(20); /* the article polls: GetMailslotInfo never waits */
        fflush(stdout);
    }
    CloseHandle(handle);
    return 0;
}
