#include "slotbus/protocol.hpp"

namespace slotbus {

bool known_frame_type(std::uint8_t value) noexcept
{
    return (value >= 0x01 && value <= 0x16) || (value >= 0x20 && value <= 0x26) ||
           (value >= 0x81 && value <= 0x91);
}

decoded_frame decode_frame(byte_span bytes, std::size_t max_frame_size) noexcept
{
    decoded_frame out;
    if (bytes.size() < 4)
        return out;
    const std::uint32_t length = boost::endian::load_little_u32(bytes.data());
    if (length == 0) {
        out.status = decoded_frame::invalid;
        out.why = "frame length 0";
        return out;
    }
    if (length > max_frame_size) {
        out.status = decoded_frame::invalid;
        out.why = "frame longer than the host's maximum";
        return out;
    }
    // The type byte is checked as soon as it is here, so garbage is refused
    // without waiting for the rest of a made-up length.
    if (bytes.size() >= frame_header_size && !known_frame_type(bytes[4])) {
        out.status = decoded_frame::invalid;
        out.why = "unknown frame type";
        return out;
    }
    if (bytes.size() < 4 + std::size_t{length})
        return out;
    out.status = decoded_frame::ok;
    out.frame.type = static_cast<frame_type>(bytes[4]);
    out.frame.body = bytes.subspan(frame_header_size, length - 1);
    out.size = 4 + std::size_t{length};
    return out;
}

std::span<std::uint8_t> frame_buffer::prepare(std::size_t max_frame_size)
{
    if (begin_ == end_)
        begin_ = end_ = 0;
    // Move a partial frame to the front when the tail is full or the front wasted.
    if (end_ == bytes_.size() || begin_ > bytes_.size() / 2) {
        std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    // Grow with what came, never to a length merely claimed: a buffer full of
    // one partial frame doubles, up to that frame's length (a length over the
    // limit is refused by next() before any of it is awaited); a buffer the
    // last read filled whole doubles up to read_size, so a busy peer is read
    // in large gulps.
    std::size_t want = bytes_.size();
    if (end_ - begin_ == bytes_.size()) {
        const std::size_t need =
            4 + std::size_t{boost::endian::load_little_u32(bytes_.data() + begin_)};
        if (need <= max_frame_size + 4)
            want = std::max(want, std::min(2 * want, need));
    } else if (filled_ && want < read_size) {
        want = 2 * want;
    }
    if (want > bytes_.size())
        bytes_.resize(want);
    filled_ = false;
    offered_ = bytes_.size() - end_;
    return {bytes_.data() + end_, offered_};
}

void record_list_builder::open(byte_buffer& out, std::uint32_t handle, std::size_t list_bytes,
                               std::uint32_t origin, std::uint32_t lane)
{
    const bool lane_frame = type_ == frame_type::write_lane || type_ == frame_type::post_lane;
    const std::size_t fields = type_ == frame_type::records        ? 8
                               : type_ == frame_type::records_lane ? 12
                               : lane_frame                        ? 8
                                                                   : 4;
    const std::size_t header_size = frame_header_size + fields;
    const bool joins = open_ != closed && end_ == out.size() && handle_ == handle &&
                       origin_ == origin && lane_ == lane &&
                       end_ - open_ + list_bytes <= header_size + batch_bytes;
    if (joins)
        return;
    open_ = out.size();
    handle_ = handle;
    origin_ = origin;
    lane_ = lane;
    std::uint8_t header[frame_header_size + 12];
    header[4] = static_cast<std::uint8_t>(type_);
    boost::endian::store_little_u32(header + frame_header_size, handle);
    // write_lane and post_lane: handle, lane; records_lane: handle, origin, lane.
    boost::endian::store_little_u32(header + frame_header_size + 4, lane_frame ? lane : origin);
    boost::endian::store_little_u32(header + frame_header_size + 8, lane);
    out.insert(out.end(), header, header + header_size);
}

void record_list_builder::close(byte_buffer& out)
{
    end_ = out.size();
    boost::endian::store_little_u32(out.data() + open_,
                                    static_cast<std::uint32_t>(end_ - open_ - 4));
}

void record_list_builder::append(byte_buffer& out, std::uint32_t handle, byte_span record,
                                 std::uint32_t origin)
{
    open(out, handle, 4 + record.size(), origin);
    append_record(out, record);
    close(out);
}

void record_list_builder::append_descriptor(byte_buffer& out, std::uint32_t handle,
                                            lane_descriptor d, std::uint32_t origin,
                                            std::uint32_t lane)
{
    open(out, handle, lane_descriptor_size, origin, lane);
    append_lane_descriptor(out, d);
    close(out);
}

void record_list_builder::append_list(byte_buffer& out, std::uint32_t handle, byte_span list,
                                      std::uint32_t origin)
{
    open(out, handle, list.size(), origin);
    out.insert(out.end(), list.begin(), list.end());
    close(out);
}

void ack_batch::add(std::uint32_t error, std::uint32_t delivered, std::uint32_t writes)
{
    if (!runs_.empty() && runs_.back().error == error && runs_.back().delivered == delivered)
        runs_.back().count += writes;
    else
        runs_.push_back({writes, error, delivered});
}

void ack_batch::flush_to(byte_buffer& out)
{
    if (runs_.empty())
        return;
    const std::size_t start = out.size();
    out.resize(start + frame_header_size + runs_.size() * ack_run_size);
    auto* p = out.data() + start;
    boost::endian::store_little_u32(p, static_cast<std::uint32_t>(1 + runs_.size() * ack_run_size));
    p[4] = static_cast<std::uint8_t>(frame_type::write_acks);
    p += frame_header_size;
    for (const auto& run : runs_) {
        boost::endian::store_little_u32(p, run.count);
        boost::endian::store_little_u32(p + 4, run.error);
        boost::endian::store_little_u32(p + 8, run.delivered);
        p += ack_run_size;
    }
    runs_.clear();
}

} // namespace slotbus
