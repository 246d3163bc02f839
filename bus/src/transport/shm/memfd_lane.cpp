#include "memfd_lane.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace slotbus::bus {

namespace {

std::error_code last_error()
{
    return {errno, std::system_category()};
}

constexpr int size_seals = F_SEAL_SHRINK | F_SEAL_GROW;
constexpr int write_seals = F_SEAL_FUTURE_WRITE | F_SEAL_SEAL;

class memfd_lane final : public lane_memory {
public:
    memfd_lane(unique_fd fd, const std::uint8_t* view, std::uint64_t size)
        : fd_(std::move(fd)), view_(view), size_(size)
    {
    }
    ~memfd_lane() override { ::munmap(const_cast<std::uint8_t*>(view_), size_); }

    [[nodiscard]] const std::uint8_t* data() const noexcept override { return view_; }
    [[nodiscard]] std::uint64_t size() const noexcept override { return size_; }
    [[nodiscard]] unique_fd writer_fd(std::error_code& ec) const override
    {
        return reopen(O_RDWR, ec);
    }
    [[nodiscard]] unique_fd reader_fd(std::error_code& ec) const override
    {
        return reopen(O_RDONLY, ec);
    }
    void seal(std::error_code& ec) override
    {
        // If the writer sealed it itself first (F_SEAL_SEAL), this fails,
        // and the lane is refused: the seals are checked, not assumed.
        if (::fcntl(fd_.get(), F_ADD_SEALS, write_seals) != 0) {
            ec = last_error();
            return;
        }
        const int seals = ::fcntl(fd_.get(), F_GET_SEALS);
        if (seals < 0 || (seals & (size_seals | write_seals)) != (size_seals | write_seals))
            ec = std::make_error_code(std::errc::operation_not_permitted);
    }

private:
    // A new open file of the same memory: the writer's and readers' fds
    // share no file state with the host's own.
    unique_fd reopen(int mode, std::error_code& ec) const
    {
        const std::string path = "/proc/self/fd/" + std::to_string(fd_.get());
        unique_fd fd(::open(path.c_str(), mode | O_CLOEXEC));
        if (!fd)
            ec = last_error();
        return fd;
    }

    unique_fd fd_;
    const std::uint8_t* view_;
    std::uint64_t size_;
};

unique_fd create(std::error_code& ec)
{
    // MFD_NOEXEC_SEAL (Linux 6.3) where the kernel has it: lane memory is
    // never a program.
    constexpr unsigned noexec_seal = 0x0008U;
    int fd = ::memfd_create("slotbus-lane", MFD_CLOEXEC | MFD_ALLOW_SEALING | noexec_seal);
    if (fd < 0 && errno == EINVAL)
        fd = ::memfd_create("slotbus-lane", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        ec = last_error();
    return unique_fd(fd);
}

} // namespace

std::unique_ptr<lane_memory> make_memfd_lane(std::uint64_t size, std::error_code& ec)
{
    unique_fd fd = create(ec);
    if (!fd)
        return nullptr;
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, size_seals) != 0) {
        ec = last_error();
        return nullptr;
    }
    // The host's view: read-only, never written, never faulted in on the
    // fast path (it is read only to copy a record out for a reader that
    // takes no lanes). The size is sealed, so it cannot SIGBUS.
    void* view = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (view == MAP_FAILED) {
        ec = last_error();
        return nullptr;
    }
    return std::make_unique<memfd_lane>(std::move(fd), static_cast<const std::uint8_t*>(view),
                                        size);
}

bool memfd_lanes_supported()
{
    static const bool supported = [] {
        std::error_code ec;
        auto probe = make_memfd_lane(4096, ec);
        if (probe)
            probe->seal(ec);
        return probe && !ec;
    }();
    return supported;
}

} // namespace slotbus::bus
