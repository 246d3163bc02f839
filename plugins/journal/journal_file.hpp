// The journal's files: JSON Lines appended whole, rotated by size, repaired
// after a crash. No bus here, so the rules are testable on their own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace slotbus::journal {

struct journal_options {
    std::filesystem::path dir;
    std::string base = "journal.jsonl";  ///< the current file; rotated ones get .1, .2, …
    std::uint64_t max_bytes = 16u << 20; ///< rotate before the current file would pass this
    unsigned max_files = 5;              ///< rotated files kept (the oldest goes first)
    bool sync = false;                   ///< fdatasync after every append
};

/// Appends lines to `dir/base`. Each write(2) is of whole lines with
/// O_APPEND, so a crash can only cut the last line short; opening the
/// journal again drops such a tail, never a complete line.
/// Single-threaded.
class journal_file {
public:
    explicit journal_file(journal_options options);
    ~journal_file();
    journal_file(const journal_file&) = delete;
    journal_file& operator=(const journal_file&) = delete;

    /// Opens (creating dir and file). Returns the bytes of a partial last line
    /// it removed (0 normally). Throws std::system_error when it cannot.
    std::uint64_t open();

    /// Appends `lines` (whole lines, each ending in '\n'): as many as fit under
    /// max_bytes in one write, then a rotation and the rest. A single line
    /// longer than max_bytes gets a file of its own. Throws std::system_error.
    void append(std::string_view lines);

    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    [[nodiscard]] std::filesystem::path current() const { return options_.dir / options_.base; }
    [[nodiscard]] std::filesystem::path rotated(unsigned n) const;

private:
    void rotate();
    void write_whole(std::string_view bytes);

    journal_options options_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

} // namespace slotbus::journal
