/* <windows.h> for a program ported from Windows: the mailslot API of
 * slotbus::win32 (slotbus/win32/mailslot.h). Linking slotbus::win32 puts
 * this directory on the include path, so `#include <windows.h>` compiles. */
#ifndef SLOTBUS_WIN32_WINDOWS_H
#define SLOTBUS_WIN32_WINDOWS_H
#include <slotbus/win32/mailslot.h>
#endif
