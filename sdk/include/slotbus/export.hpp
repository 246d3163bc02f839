// SLOTBUS_API marks what libslotbus exports. The library is built with
// hidden visibility, so a shared libslotbus shows only what a header here
// declares with it (docs/decisions.md, "Install"). A standard attribute
// rather than GenerateExportHeader's __attribute__, which GCC does not take
// beside [[nodiscard]] on a class.
#pragma once

#define SLOTBUS_API [[gnu::visibility("default")]]
