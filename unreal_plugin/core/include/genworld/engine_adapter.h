// The engine side of the World interface (ARCHITECTURE.md §2): what WorldServiceImpl
// calls after it has validated every input. The Unreal module and the reference
// RaycastAdapter implement it; nothing here depends on gRPC or protobuf.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "genworld/conventions.h"

namespace genworld {

constexpr char kProtocolVersion[] = "1.0.0";
constexpr int kNumHands = 2;
constexpr int kHandKeypoints = 21;

// Capability strings advertised in the handshake.
constexpr char kCapRgb[] = "rgb";
constexpr char kCapDepth[] = "depth";
constexpr char kCapHands[] = "hands";
constexpr char kCapNavKeys[] = "nav_keys";
constexpr char kCapNavContinuous[] = "nav_continuous";
constexpr char kCapSetPose[] = "set_pose";
constexpr char kCapCollision[] = "collision";
constexpr char kCapStepStream[] = "step_stream";

// Errors an adapter may raise; the service maps them to gRPC statuses. Anything else an
// adapter throws is an engine failure (INTERNAL).
struct WorldError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct InvalidArgumentError : WorldError {
  using WorldError::WorldError;
};
struct FailedPreconditionError : WorldError {
  using WorldError::WorldError;
};

struct WorldInfo {
  std::string name;
  std::vector<std::string> capabilities;
  std::vector<std::string> agent_ids{"agent_0"};
  uint32_t width = 64;
  uint32_t height = 64;
};

// What one agent sees at one capture.
struct Observation {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgb;   // H x W x 3, row-major, interleaved
  std::vector<float> depth;   // H x W planar metres, +inf where nothing was hit
  Mat4 pose = identity4();    // camera-to-world, OpenCV axes
  Mat3 K = identity3();
  uint64_t frame_id = 0;      // captures since reset
  double sim_time = 0.0;      // seconds since reset
  bool collided = false;      // the motion that led here was blocked
  std::optional<std::vector<float>> hand_keypoints;  // 2 x 21 x 3 in the camera frame
};

// One agent's validated action: exactly one kind.
struct Action {
  enum class Kind { kKey, kNav, kHand };
  Kind kind = Kind::kKey;
  int key = 0;                  // kKey: 0..8
  std::vector<double> values;   // kNav: 6 in [-1, 1]; kHand: 14 (grips in [0, 1])

  static Action noop() { return Action{}; }
};

// Ordered (agent_id, observation) pairs: the order frames appear on the wire.
using Observations = std::vector<std::pair<std::string, Observation>>;

class EngineAdapter {
 public:
  virtual ~EngineAdapter() = default;
  virtual WorldInfo handshake() = 0;
  // `options_json` is a JSON object (already checked); unknown keys → InvalidArgumentError.
  virtual Observations reset(std::optional<int64_t> seed, const std::string& options_json) = 0;
  // Agents missing from `actions` take the noop.
  virtual Observations step(const std::map<std::string, Action>& actions) = 0;
  virtual Observation set_pose(const std::string& agent_id, const Mat4& pose) = 0;
  virtual void close() = 0;
};

using EngineFactory = std::function<std::unique_ptr<EngineAdapter>()>;

}  // namespace genworld
