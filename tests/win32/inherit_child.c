/* A child process for the bInheritHandle tests: reads one record through a
 * handle its parent made inheritable, by the handle's value, as a Windows
 * child is told its inherited handle's value (on its command line).
 *
 *   win32_inherit_child HANDLE_VALUE     prints "read N: DATA" or "failed E" */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

int main(int argc, char** argv)
{
    char buffer[512];
    DWORD read = 0;
    HANDLE inherited;

    if (argc < 2)
        return 2;
    inherited = (HANDLE)(uintptr_t)strtoull(argv[1], NULL, 0);
    if (!ReadFile(inherited, buffer, sizeof buffer, &read, NULL)) {
        printf("failed %u\n", GetLastError());
        return 1;
    }
    printf("read %u: %.*s\n", read, (int)read, buffer);
    return 0;
}
