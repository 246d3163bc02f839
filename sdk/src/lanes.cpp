#include "slotbus/detail/lanes.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tuple>
#include <utility>

namespace slotbus::detail {

std::shared_ptr<lane_mapping> lane_mapping::map(int fd, std::uint64_t size, bool writer,
                                                boost::system::error_code& ec)
{
    ec.clear();
    // What the host says the lane is, the kernel confirms: its size, and
    // (a reader's) the seals that make it safe to read.
    struct stat st {};
    if (size == 0 || ::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != size) {
        ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
        return nullptr;
    }
    const int seals = ::fcntl(fd, F_GET_SEALS);
    int needed = F_SEAL_SHRINK | F_SEAL_GROW;
    if (!writer)
        needed |= F_SEAL_FUTURE_WRITE;
    if (seals < 0 || (seals & needed) != needed) {
        ec = boost::system::errc::make_error_code(boost::system::errc::operation_not_permitted);
        return nullptr;
    }
    // A writer's is faulted in now: its first records should not pay for it.
    void* at = ::mmap(nullptr, size, writer ? PROT_READ | PROT_WRITE : PROT_READ,
                      MAP_SHARED | (writer ? MAP_POPULATE : 0), fd, 0);
    if (at == MAP_FAILED) {
        ec = boost::system::error_code(errno, boost::system::system_category());
        return nullptr;
    }
    return std::make_shared<lane_mapping>(static_cast<std::uint8_t*>(at), size);
}

lane_mapping::~lane_mapping()
{
    ::munmap(data_, size_);
}

std::span<const std::uint8_t> lane_mapping::at(lane_descriptor d) const noexcept
{
    const auto start = d.position % size_;
    if (d.length == 0 || d.length > size_ - start)
        return {};
    return {data_ + start, d.length};
}

void lane_writers::enable(std::uint32_t threshold, std::uint32_t max_record) noexcept
{
    std::lock_guard lock(mutex_);
    const bool on = threshold != 0 && max_record != 0;
    max_record_.store(on ? max_record : 0, std::memory_order_relaxed);
    threshold_.store(on ? threshold : 0, std::memory_order_relaxed);
}

bool lane_writers::wants(std::span<const boost::asio::const_buffer> records) const noexcept
{
    const auto low = threshold();
    if (low == 0 || records.empty())
        return false;
    const auto high = max_record();
    for (const auto& r : records)
        if (r.size() < low || r.size() > high)
            return false;
    return true;
}

namespace {

// A handle's lane forgotten; the count of its waiting writes is not the lane's.
template <class Lane> void clear_keeping_waiting(Lane& w)
{
    const auto waiting = w.waiting;
    w = Lane{};
    w.waiting = waiting;
}

} // namespace

lane_writers::writer_lane* lane_writers::lane_by_id(std::uint32_t lane)
{
    for (auto& [handle, w] : handles_)
        if (w.id == lane)
            return &w;
    return nullptr;
}

std::uint32_t lane_writers::opened(std::uint32_t handle, std::uint32_t lane,
                                   std::shared_ptr<lane_mapping> memory)
{
    std::lock_guard lock(mutex_);
    writer_lane& w = handles_[handle];
    w.asked = false;
    if (!memory) {
        if (w.id != 0)
            w.grow_refused = true; // its lane stays, for the records it holds
        else
            w.refused = true;
        return 0;
    }
    // The frames into the old lane leave before any into the new one: once
    // they are out, the host may let it go.
    const auto old = w.closing ? 0 : w.id;
    const auto old_in_transit = w.in_transit;
    const auto still_retiring = std::pair(w.retiring, w.retiring_in_transit);
    clear_keeping_waiting(w);
    w.id = lane;
    w.memory = std::move(memory);
    std::tie(w.retiring, w.retiring_in_transit) = still_retiring;
    if (old == 0 || w.retiring != 0)
        return old; // (a lane replaced twice before its frames were out: rare, told at once)
    if (old_in_transit == 0)
        return old;
    w.retiring = old;
    w.retiring_in_transit = old_in_transit;
    return 0;
}

void lane_writers::released(std::uint32_t lane, std::uint64_t position)
{
    std::lock_guard lock(mutex_);
    if (writer_lane* w = lane_by_id(lane); w && position > w->released && position <= w->end) {
        w->released = position;
        w->stalled = false; // it moves again
    }
}

bool lane_writers::closing(std::uint32_t lane)
{
    std::lock_guard lock(mutex_);
    for (const auto& [handle, replaced] : handles_)
        if (replaced.retiring == lane)
            return false; // lane_closed goes when its last frame is out (sent())
    writer_lane* w = lane_by_id(lane);
    if (!w)
        return true; // forgotten here already: nothing of it is on its way
    w->closing = true;
    if (w->in_transit != 0)
        return false;
    clear_keeping_waiting(*w); // asks anew with its next large record
    return true;
}

std::uint32_t lane_writers::sent(std::uint32_t handle)
{
    std::lock_guard lock(mutex_);
    auto it = handles_.find(handle);
    if (it == handles_.end() || it->second.in_transit + it->second.retiring_in_transit == 0)
        return 0;
    writer_lane& w = it->second;
    if (w.retiring_in_transit != 0) { // the replaced lane's frames go first
        if (--w.retiring_in_transit != 0)
            return 0;
        return std::exchange(w.retiring, 0);
    }
    if (--w.in_transit != 0 || !w.closing)
        return 0;
    const auto lane = w.id;
    clear_keeping_waiting(w);
    return lane;
}

void lane_writers::forget(std::uint32_t handle)
{
    std::lock_guard lock(mutex_);
    if (auto it = handles_.find(handle); it != handles_.end()) {
        waiting_.fetch_sub(it->second.waiting, std::memory_order_relaxed);
        handles_.erase(it);
    }
}

bool lane_writers::must_wait(std::uint32_t handle)
{
    if (waiting_.load(std::memory_order_relaxed) == 0)
        return false;
    std::lock_guard lock(mutex_);
    auto it = handles_.find(handle);
    if (it == handles_.end() || it->second.waiting == 0)
        return false;
    ++it->second.waiting;
    waiting_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void lane_writers::stop_waiting(std::uint32_t handle)
{
    std::lock_guard lock(mutex_);
    if (auto it = handles_.find(handle); it != handles_.end() && it->second.waiting != 0) {
        --it->second.waiting;
        waiting_.fetch_sub(1, std::memory_order_relaxed);
    }
}

bool lane_writers::stall()
{
    std::lock_guard lock(mutex_);
    bool any = false;
    for (auto& [handle, w] : handles_)
        if (w.waiting != 0 && !w.stalled)
            any = w.stalled = true;
    return any;
}

void lane_writers::reset()
{
    std::lock_guard lock(mutex_);
    // Waiting writes stay counted: the connection's thread ends them.
    for (auto& [handle, w] : handles_)
        clear_keeping_waiting(w);
    threshold_.store(0, std::memory_order_relaxed);
    max_record_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_relaxed);
}

std::uint32_t lane_writers::lane_of(std::uint32_t handle) const
{
    std::lock_guard lock(mutex_);
    auto it = handles_.find(handle);
    return it == handles_.end() || it->second.closing ? 0 : it->second.id;
}

std::uint64_t lane_writers::piece_bytes(std::uint32_t handle) const
{
    std::lock_guard lock(mutex_);
    auto it = handles_.find(handle);
    if (it == handles_.end() || !it->second.memory)
        return std::uint64_t{4} << 20; // half the host's default lane
    return it->second.memory->size() / 2;
}

} // namespace slotbus::detail
