// Reference EngineAdapter: a CPU ray caster of a few textured primitives with exact
// planar depth, poses and K. Cheap and deterministic from the seed, so the conformance
// suite can check the core end to end without Unreal.
#pragma once

#include <memory>

#include "genworld/engine_adapter.h"
#include "genworld/navigation.h"

namespace genworld {

struct RaycastConfig {
  uint32_t width = 64;
  uint32_t height = 64;
  double fov_deg = 70.0;          // vertical, like MuJoCo's fovy
  double camera_radius = 0.2;     // collision sphere around the camera (metres)
  double dt = 0.1;                // simulated seconds per step
  NavLimits limits{};
};

class RaycastAdapter : public EngineAdapter {
 public:
  explicit RaycastAdapter(RaycastConfig config = {});
  ~RaycastAdapter() override;

  WorldInfo handshake() override;
  // Options: "scene" (a name; every name maps to the same procedural family) and
  // "inject_fault" ("step": the next step throws, a test hook for INTERNAL handling).
  Observations reset(std::optional<int64_t> seed, const std::string& options_json) override;
  Observations step(const std::map<std::string, Action>& actions) override;
  Observation set_pose(const std::string& agent_id, const Mat4& pose) override;
  void close() override;

 private:
  struct State;
  Observation observe(bool collided) const;
  RaycastConfig config_;
  std::unique_ptr<State> state_;
};

}  // namespace genworld
