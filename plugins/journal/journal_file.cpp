#include "journal_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace slotbus::journal {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what)
{
    throw std::system_error(errno, std::generic_category(), what);
}

} // namespace

journal_file::journal_file(journal_options options) : options_(std::move(options)) {}

journal_file::~journal_file()
{
    if (fd_ >= 0)
        ::close(fd_);
}

fs::path journal_file::rotated(unsigned n) const
{
    return options_.dir / (options_.base + "." + std::to_string(n));
}

std::uint64_t journal_file::open()
{
    fs::create_directories(options_.dir);
    const auto path = current();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0)
        fail("open " + path.string());
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0)
        fail("lseek " + path.string());
    // Find the last newline: everything after it is a line a crash cut short.
    off_t keep = end;
    char buffer[4096];
    while (keep > 0) {
        const off_t from =
            keep > static_cast<off_t>(sizeof buffer) ? keep - static_cast<off_t>(sizeof buffer) : 0;
        const auto n = ::pread(fd_, buffer, static_cast<std::size_t>(keep - from), from);
        if (n < 0)
            fail("read " + path.string());
        ssize_t i = n;
        while (i > 0 && buffer[i - 1] != '\n')
            --i;
        if (i > 0) {
            keep = from + i;
            break;
        }
        keep = from;
    }
    if (keep < end && ::ftruncate(fd_, keep) != 0)
        fail("truncate " + path.string());
    size_ = static_cast<std::uint64_t>(keep);
    return static_cast<std::uint64_t>(end - keep);
}

void journal_file::append(std::string_view lines)
{
    // Whole lines, as many as fit, in one write; the rest after a rotation.
    // Only a single line longer than max_bytes makes a file pass it (alone).
    while (!lines.empty()) {
        std::size_t take = 0;
        while (take < lines.size()) {
            const auto end = lines.find('\n', take);
            const auto next = end == std::string_view::npos ? lines.size() : end + 1;
            if (size_ + next > options_.max_bytes && (size_ > 0 || take > 0))
                break;
            take = next;
        }
        if (take == 0) { // the next line does not fit here: a fresh file
            rotate();
            continue;
        }
        write_whole(lines.substr(0, take));
        lines.remove_prefix(take);
    }
    if (options_.sync && ::fdatasync(fd_) != 0)
        fail("fdatasync " + current().string());
}

void journal_file::write_whole(std::string_view bytes)
{
    const char* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
        const auto n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("write " + current().string());
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    size_ += bytes.size();
}

void journal_file::rotate()
{
    ::close(fd_);
    fd_ = -1;
    std::error_code ec;
    if (options_.max_files == 0) {
        fs::remove(current(), ec);
    } else {
        fs::remove(rotated(options_.max_files), ec);
        for (unsigned n = options_.max_files; n > 1; --n)
            if (fs::exists(rotated(n - 1)))
                fs::rename(rotated(n - 1), rotated(n));
        fs::rename(current(), rotated(1));
    }
    open();
}

} // namespace slotbus::journal
