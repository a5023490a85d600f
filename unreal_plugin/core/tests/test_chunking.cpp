// StepStream framing: chunk sizes, headers on chunk 0, rgb before depth, last_chunk, and
// a byte-exact round trip, on 640x480 frames from the reference engine.
#include "chunking.h"
#include "genworld/raycast_adapter.h"
#include "test_util.h"

using namespace genworld;

int main() {
  RaycastConfig config;
  config.width = 640;
  config.height = 480;
  RaycastAdapter engine(config);
  const Observations obs = engine.reset(3, R"({"scene": "rooms"})");
  v1::FrameSet set = frameset_to_proto(7, obs);
  *set.add_frames() = set.frames(0);  // two frames, to cover frame_index > 0
  set.mutable_frames(1)->set_agent_id("copy");
  const size_t rgb_bytes = 640 * 480 * 3, depth_bytes = 640 * 480 * 4;
  CHECK(set.frames(0).rgb().data().size() == rgb_bytes);
  CHECK(set.frames(0).depth().total_bytes() == depth_bytes);

  for (size_t max_chunk : {kMinChunkBytes, size_t{65536}, kDefaultChunkBytes, size_t{16} << 20}) {
    const auto chunks = chunk_frameset(set, max_chunk);
    const size_t per_frame = (rgb_bytes + depth_bytes + max_chunk - 1) / max_chunk;
    CHECK(chunks.size() == 2 * per_frame);
    for (size_t i = 0; i < chunks.size(); ++i) {
      const auto& c = chunks[i];
      CHECK(c.frame().rgb().data().size() + c.frame().depth().data().size() <= max_chunk);
      CHECK(c.last_chunk() == (i + 1 == chunks.size()));
      CHECK(c.frame_count() == 2 && c.step_id() == 7);
      if (c.chunk_index() == 0) CHECK(c.frame().has_pose() && c.frame().rgb().total_bytes() == rgb_bytes);
      else CHECK(!c.frame().has_pose() && c.frame().rgb().total_bytes() == 0);
    }
    const v1::FrameSet back = reassemble(chunks);
    CHECK(back.SerializeAsString() == set.SerializeAsString());
  }
  // Empty FrameSet: one chunk with last_chunk.
  v1::FrameSet empty;
  empty.set_step_id(3);
  const auto chunks = chunk_frameset(empty, kDefaultChunkBytes);
  CHECK(chunks.size() == 1 && chunks[0].last_chunk());
  bool threw = false;
  try {
    chunk_frameset(set, kMinChunkBytes - 1);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
  return test::finish("test_chunking");
}
