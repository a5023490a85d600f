#include "chunking.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace genworld {

std::vector<v1::FrameChunk> chunk_frameset(const v1::FrameSet& frameset, size_t max_chunk_bytes) {
  if (max_chunk_bytes < kMinChunkBytes)
    throw std::invalid_argument("max_chunk_bytes must be >= " + std::to_string(kMinChunkBytes));
  std::vector<v1::FrameChunk> chunks;
  const int frame_count = frameset.frames_size();
  if (frame_count == 0) {
    chunks.emplace_back();
    chunks.back().set_step_id(frameset.step_id());
    chunks.back().set_last_chunk(true);
    return chunks;
  }
  for (int f = 0; f < frame_count; ++f) {
    const v1::Frame& frame = frameset.frames(f);
    const std::string& rgb = frame.rgb().data();
    const std::string& depth = frame.depth().data();
    const size_t rgb_size = rgb.size(), total = rgb_size + depth.size();
    const size_t chunk_count = std::max<size_t>(1, (total + max_chunk_bytes - 1) / max_chunk_bytes);
    for (size_t c = 0; c < chunk_count; ++c) {
      // This chunk carries bytes [start, stop) of the frame's rgb-then-depth data.
      const size_t start = c * max_chunk_bytes, stop = std::min(total, start + max_chunk_bytes);
      const size_t rgb_lo = std::min(start, rgb_size), rgb_hi = std::min(stop, rgb_size);
      const size_t depth_lo = std::max(start, rgb_size) - rgb_size, depth_hi = std::max(stop, rgb_size) - rgb_size;
      v1::FrameChunk chunk;
      chunk.set_step_id(frameset.step_id());
      chunk.set_frame_index(static_cast<uint32_t>(f));
      chunk.set_chunk_index(static_cast<uint32_t>(c));
      chunk.set_frame_count(static_cast<uint32_t>(frame_count));
      chunk.set_last_chunk(f == frame_count - 1 && c == chunk_count - 1);
      v1::Frame* out = chunk.mutable_frame();
      if (c == 0) {
        // Metadata and both plane headers, without the (large) data copied twice.
        *out = frame;
        out->mutable_rgb()->clear_data();
        out->mutable_depth()->clear_data();
      }
      if (c == 0 || rgb_hi > rgb_lo) out->mutable_rgb()->set_data(rgb.data() + rgb_lo, rgb_hi - rgb_lo);
      if (c == 0 || depth_hi > depth_lo)
        out->mutable_depth()->set_data(depth.data() + depth_lo, depth_hi - depth_lo);
      chunks.push_back(std::move(chunk));
    }
  }
  return chunks;
}

v1::FrameSet reassemble(const std::vector<v1::FrameChunk>& chunks) {
  if (chunks.empty()) throw std::invalid_argument("no chunks");
  v1::FrameSet set;
  set.set_step_id(chunks.front().step_id());
  const uint32_t frame_count = chunks.front().frame_count();
  uint32_t expected_chunk = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const v1::FrameChunk& chunk = chunks[i];
    if (chunk.step_id() != set.step_id() || chunk.frame_count() != frame_count)
      throw std::invalid_argument("step_id or frame_count changed mid-FrameSet");
    if (chunk.last_chunk() != (i + 1 == chunks.size())) throw std::invalid_argument("last_chunk misplaced");
    if (frame_count == 0) continue;
    if (chunk.chunk_index() == 0) {
      if (chunk.frame_index() != static_cast<uint32_t>(set.frames_size()))
        throw std::invalid_argument("frame out of order");
      *set.add_frames() = chunk.frame();
      expected_chunk = 1;
      continue;
    }
    if (chunk.chunk_index() != expected_chunk++ || chunk.frame_index() + 1 != static_cast<uint32_t>(set.frames_size()))
      throw std::invalid_argument("chunk out of order");
    v1::Frame* frame = set.mutable_frames(set.frames_size() - 1);
    frame->mutable_rgb()->mutable_data()->append(chunk.frame().rgb().data());
    if (!chunk.frame().depth().data().empty() && frame->rgb().data().size() < frame->rgb().total_bytes())
      throw std::invalid_argument("depth before rgb was complete");
    frame->mutable_depth()->mutable_data()->append(chunk.frame().depth().data());
  }
  for (const v1::Frame& frame : set.frames())
    if (frame.rgb().data().size() != frame.rgb().total_bytes() ||
        frame.depth().data().size() != frame.depth().total_bytes())
      throw std::invalid_argument("plane sizes disagree with total_bytes");
  return set;
}

}  // namespace genworld
