/* A child process for the bInheritHandle tests: uses a handle its parent
 * made inheritable, by the handle's value, as a Windows child is told its
 * inherited handle's value (on its command line).
 *
 *   win32_inherit_child HANDLE_VALUE          reads a record: "read N: DATA"
 *   win32_inherit_child HANDLE_VALUE TEXT     writes TEXT: "wrote N"
 * On failure it prints "failed E" and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

int main(int argc, char** argv)
{
    char buffer[512];
    DWORD done = 0;
    HANDLE inherited;

    if (argc < 2)
        return 2;
    inherited = (HANDLE)(uintptr_t)strtoull(argv[1], NULL, 0);
    if (argc > 2) {
        if (!WriteFile(inherited, argv[2], (DWORD)strlen(argv[2]), &done, NULL)) {
            printf("failed %u\n", GetLastError());
            return 1;
        }
        printf("wrote %u\n", done);
        return 0;
    }
    if (!ReadFile(inherited, buffer, sizeof buffer, &done, NULL)) {
        printf("failed %u\n", GetLastError());
        return 1;
    }
    printf("read %u: %.*s\n", done, (int)done, buffer);
    return 0;
}
