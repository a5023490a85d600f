// StepStream framing, exactly as world_service.proto and bridge/framing.py lay it out:
// chunk 0 of each frame carries the frame's metadata, both planes' headers (total_bytes
// included) and the first slice; later chunks carry further slices of rgb.data then
// depth.data, each chunk at most max_chunk_bytes of plane data; last_chunk marks the end
// of the FrameSet. Private: uses generated code.
#pragma once

#include <cstddef>
#include <vector>

#include "proto_codec.h"

namespace genworld {

// A chunk carries at least this much plane data (as bridge/framing.py MIN_CHUNK_BYTES).
constexpr size_t kMinChunkBytes = 1024;
constexpr size_t kDefaultChunkBytes = 1 << 20;

std::vector<v1::FrameChunk> chunk_frameset(const v1::FrameSet& frameset, size_t max_chunk_bytes);

// Inverse of chunk_frameset, checking order and sizes (tests; the Python client does its own).
v1::FrameSet reassemble(const std::vector<v1::FrameChunk>& chunks);

}  // namespace genworld
