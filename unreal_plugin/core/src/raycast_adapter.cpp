#include "genworld/raycast_adapter.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "raycast_scene.h"

namespace genworld {
namespace {
constexpr char kAgent[] = "agent_0";
constexpr char kWorldName[] = "raycast";
constexpr char kOptionScene[] = "scene";
constexpr char kOptionFault[] = "inject_fault";
constexpr uint64_t kDefaultSeed = 0;
}  // namespace

struct RaycastAdapter::State {
  Scene scene;
  Mat4 pose = identity4();
  Mat3 K = identity3();
  uint64_t frame_id = 0;
  bool has_reset = false;
  bool fail_next_step = false;
  bool closed = false;
};

RaycastAdapter::RaycastAdapter(RaycastConfig config) : config_(config), state_(std::make_unique<State>()) {
  state_->K = intrinsics_from_fov(static_cast<int>(config_.width), static_cast<int>(config_.height),
                                  config_.fov_deg, "vertical");
}

RaycastAdapter::~RaycastAdapter() = default;

WorldInfo RaycastAdapter::handshake() {
  WorldInfo info;
  info.name = kWorldName;
  info.capabilities = {kCapRgb, kCapDepth, kCapNavKeys, kCapNavContinuous, kCapSetPose, kCapCollision};
  info.agent_ids = {kAgent};
  info.width = config_.width;
  info.height = config_.height;
  return info;
}

Observations RaycastAdapter::reset(std::optional<int64_t> seed, const std::string& options_json) {
  bool fail_next_step = false;
  if (!options_json.empty()) {
    const nlohmann::json options = nlohmann::json::parse(options_json);
    for (const auto& [key, value] : options.items()) {
      if (key == kOptionScene) {
        // The recorder names a scene family; this engine has one, so any name is accepted.
        if (!value.is_string())
          throw InvalidArgumentError("ResetRequest.options_json: 'scene' must be a string");
      } else if (key == kOptionFault) {
        if (value != "step")
          throw InvalidArgumentError("ResetRequest.options_json: 'inject_fault' must be \"step\"");
        fail_next_step = true;
      } else {
        throw InvalidArgumentError("ResetRequest.options_json: unknown option '" + key +
                                   "'; this world accepts ['scene', 'inject_fault']");
      }
    }
  }
  State& s = *state_;
  s.scene = make_scene(static_cast<uint64_t>(seed.value_or(kDefaultSeed)));
  const Vec3 eye = s.scene.start_eye;
  const Vec3 target{eye[0] + std::cos(s.scene.start_yaw), eye[1] + std::sin(s.scene.start_yaw), eye[2]};
  s.pose = look_at(eye, target);
  s.frame_id = 0;
  s.has_reset = true;
  s.fail_next_step = fail_next_step;
  return {{kAgent, observe(false)}};
}

Observations RaycastAdapter::step(const std::map<std::string, Action>& actions) {
  State& s = *state_;
  if (!s.has_reset) throw FailedPreconditionError("step before reset");
  if (s.fail_next_step) {
    s.fail_next_step = false;
    throw std::runtime_error("injected engine fault (reset option inject_fault)");
  }
  const auto it = actions.find(kAgent);
  const Action action = it == actions.end() ? Action::noop() : it->second;
  NavVector nav{};
  if (action.kind == Action::Kind::kKey) {
    nav = key_to_nav(action.key);
  } else if (action.kind == Action::Kind::kNav) {
    for (int i = 0; i < kNavDim; ++i) nav[i] = action.values[i];
  }  // hand actions: this scene has no hands, the camera stays put
  Mat4 next = integrate_nav(s.pose, nav, config_.limits);
  // Collision: the rotation always applies, a translation into geometry is refused.
  const bool collided = collides(s.scene, translation_of(next), config_.camera_radius);
  if (collided) {
    for (int i = 0; i < 3; ++i) next[i][3] = s.pose[i][3];
  }
  s.pose = next;
  ++s.frame_id;
  return {{kAgent, observe(collided)}};
}

Observation RaycastAdapter::set_pose(const std::string& agent_id, const Mat4& pose) {
  if (agent_id != kAgent) throw InvalidArgumentError("unknown agent '" + agent_id + "'");
  if (!state_->has_reset) throw FailedPreconditionError("set_pose before reset");
  state_->pose = pose;
  return observe(false);
}

void RaycastAdapter::close() { state_->closed = true; }

Observation RaycastAdapter::observe(bool collided) const {
  const State& s = *state_;
  Observation obs;
  obs.width = config_.width;
  obs.height = config_.height;
  render(s.scene, s.pose, s.K, config_.width, config_.height, &obs.rgb, &obs.depth);
  obs.pose = s.pose;
  obs.K = s.K;
  obs.frame_id = s.frame_id;
  obs.sim_time = config_.dt * static_cast<double>(s.frame_id);
  obs.collided = collided;
  return obs;
}

}  // namespace genworld
