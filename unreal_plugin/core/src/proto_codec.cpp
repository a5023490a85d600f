#include "proto_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "genworld/navigation.h"

namespace genworld {
namespace {
constexpr double kRangeSlack = 1e-9;  // float noise allowed outside [-1, 1] before clipping
constexpr int kGripIndices[] = {6, 13};
constexpr size_t kHandKeypointFloats = kNumHands * kHandKeypoints * 3;

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", '" : "'") + items[i] + "'";
  return out + "]";
}

std::vector<double> checked_vector(const google::protobuf::RepeatedField<double>& values, size_t dim,
                                   const std::string& name, double lo, double hi) {
  if (static_cast<size_t>(values.size()) != dim)
    throw InvalidArgumentError("Action." + name + " must have shape (" + std::to_string(dim) + ",), got (" +
                               std::to_string(values.size()) + ",)");
  std::vector<double> out(values.begin(), values.end());
  for (double& v : out) {
    if (!std::isfinite(v)) throw InvalidArgumentError("Action." + name + " must be finite, got " + format_double(v));
    if (v < lo - kRangeSlack || v > hi + kRangeSlack)
      throw InvalidArgumentError("Action." + name + " must lie in [" + format_double(lo) + ", " +
                                 format_double(hi) + "], got " + format_double(v));
    v = std::min(hi, std::max(lo, v));
  }
  return out;
}

Action action_from_proto(const v1::Action& msg) {
  Action action;
  switch (msg.kind_case()) {
    case v1::Action::kKey:
      if (msg.key() < 0 || msg.key() >= kNumNavKeys)
        throw InvalidArgumentError("Action.key must be an int in [0, " + std::to_string(kNumNavKeys) + "), got " +
                                   std::to_string(msg.key()));
      action.kind = Action::Kind::kKey;
      action.key = msg.key();
      return action;
    case v1::Action::kNav:
      action.kind = Action::Kind::kNav;
      action.values = checked_vector(msg.nav().values(), kNavDim, "nav_vector", -1.0, 1.0);
      return action;
    case v1::Action::kHand:
      action.kind = Action::Kind::kHand;
      action.values = checked_vector(msg.hand().values(), kHandDim, "hand_vector", -1.0, 1.0);
      for (int i : kGripIndices)
        if (action.values[i] < 0.0)
          throw InvalidArgumentError("Action.hand_vector grip targets (indices 6, 13) must be in [0, 1]");
      return action;
    default:
      throw InvalidArgumentError("sets no action (expected one of key, nav, hand)");
  }
}

const char* kind_name(const v1::Action& msg) {
  switch (msg.kind_case()) {
    case v1::Action::kKey: return "key";
    case v1::Action::kNav: return "nav";
    case v1::Action::kHand: return "hand";
    default: return "";
  }
}

void image_to_proto(v1::PixelFormat format, uint32_t width, uint32_t height, const void* data, size_t bytes,
                    v1::Image* image) {
  image->set_format(format);
  image->set_codec(v1::CODEC_RAW);
  image->set_width(width);
  image->set_height(height);
  image->set_total_bytes(bytes);
  image->set_data(data, bytes);
}
}  // namespace

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

Mat4 pose_from_proto(const v1::Pose& msg, const std::string& field) {
  const std::pair<const char*, double> parts[] = {{"x", msg.x()},   {"y", msg.y()},   {"z", msg.z()},
                                                  {"qw", msg.qw()}, {"qx", msg.qx()}, {"qy", msg.qy()},
                                                  {"qz", msg.qz()}};
  for (const auto& [name, value] : parts)
    if (!std::isfinite(value))
      throw InvalidArgumentError(field + "." + name + " is " + format_double(value) + "; a pose must be finite");
  const double n = std::sqrt(msg.qw() * msg.qw() + msg.qx() * msg.qx() + msg.qy() * msg.qy() + msg.qz() * msg.qz());
  if (std::abs(n - 1.0) > kQuatNormTolerance)
    throw InvalidArgumentError(field + " (qw, qx, qy, qz) has norm " + format_double(n) +
                               "; a rigid pose needs a unit quaternion");
  return pose_from_quat({msg.x(), msg.y(), msg.z()}, {msg.qw(), msg.qx(), msg.qy(), msg.qz()});
}

void pose_to_proto(const Mat4& pose, v1::Pose* msg) {
  const Quat q = matrix_to_quat(rotation_of(pose));
  msg->set_x(pose[0][3]);
  msg->set_y(pose[1][3]);
  msg->set_z(pose[2][3]);
  msg->set_qw(q[0]);
  msg->set_qx(q[1]);
  msg->set_qy(q[2]);
  msg->set_qz(q[3]);
}

std::map<std::string, Action> actions_from_proto(const google::protobuf::RepeatedPtrField<v1::Action>& msgs,
                                                 const std::vector<std::string>& agent_ids, const std::string& field) {
  std::map<std::string, Action> out;
  for (int i = 0; i < msgs.size(); ++i) {
    const v1::Action& msg = msgs.Get(i);
    const std::string where = field + "[" + std::to_string(i) + "]";
    Action action;
    try {
      action = action_from_proto(msg);
    } catch (const InvalidArgumentError& exc) {
      const std::string kind = kind_name(msg);
      throw InvalidArgumentError(where + (kind.empty() ? " " : "." + kind + ": ") + exc.what());
    }
    if (std::find(agent_ids.begin(), agent_ids.end(), msg.agent_id()) == agent_ids.end())
      throw InvalidArgumentError(where + ".agent_id: unknown agent '" + msg.agent_id() + "'; this world has " +
                                 quoted_list(agent_ids));
    if (!out.emplace(msg.agent_id(), action).second)
      throw InvalidArgumentError(where + ".agent_id: agent '" + msg.agent_id() + "' already has an action");
  }
  return out;
}

void frame_to_proto(const std::string& agent_id, const Observation& obs, v1::Frame* frame) {
  const size_t pixels = static_cast<size_t>(obs.width) * obs.height;
  if (obs.rgb.size() != 3 * pixels || obs.depth.size() != pixels)
    throw WorldError("engine returned planes of the wrong size for " + std::to_string(obs.width) + "x" +
                     std::to_string(obs.height));
  if (!is_rigid(obs.pose, 1e-4)) throw WorldError("engine returned a non-rigid pose");
  frame->set_agent_id(agent_id);
  frame->set_frame_id(obs.frame_id);
  frame->set_sim_time(obs.sim_time);
  frame->set_collided(obs.collided);
  pose_to_proto(obs.pose, frame->mutable_pose());
  v1::Intrinsics* K = frame->mutable_intrinsics();
  K->set_fx(obs.K[0][0]);
  K->set_fy(obs.K[1][1]);
  K->set_cx(obs.K[0][2]);
  K->set_cy(obs.K[1][2]);
  K->set_width(obs.width);
  K->set_height(obs.height);
  // The wire is little-endian float32; so is every platform this core targets (x86, ARM).
  image_to_proto(v1::PIXEL_FORMAT_RGB8, obs.width, obs.height, obs.rgb.data(), obs.rgb.size(), frame->mutable_rgb());
  image_to_proto(v1::PIXEL_FORMAT_DEPTH_F32, obs.width, obs.height, obs.depth.data(),
                 obs.depth.size() * sizeof(float), frame->mutable_depth());
  if (obs.hand_keypoints) {
    if (obs.hand_keypoints->size() != kHandKeypointFloats) throw WorldError("engine returned bad hand keypoints");
    frame->mutable_hand_keypoints()->set_xyz_f32(obs.hand_keypoints->data(), kHandKeypointFloats * sizeof(float));
  }
}

v1::FrameSet frameset_to_proto(uint64_t step_id, const Observations& observations) {
  v1::FrameSet set;
  set.set_step_id(step_id);
  for (const auto& [agent, obs] : observations) frame_to_proto(agent, obs, set.add_frames());
  return set;
}

std::array<int, 3> parse_semver(const std::string& text, const std::string& field) {
  std::array<int, 3> out{};
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t end = i < 2 ? text.find('.', pos) : text.size();
    const std::string part = end == std::string::npos ? "" : text.substr(pos, end - pos);
    const bool digits = !part.empty() && part.size() < 9 && part.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || (i == 2 && text.find('.', pos) != std::string::npos))
      throw InvalidArgumentError(field + " must look like MAJOR.MINOR.PATCH, got '" + text + "'");
    out[i] = std::stoi(part);
    pos = end + 1;
  }
  return out;
}

void check_options_json(const std::string& text, const std::string& field) {
  if (text.empty()) return;
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& exc) {
    throw InvalidArgumentError(field + " is not valid JSON: " + exc.what());
  }
  if (!value.is_object()) throw InvalidArgumentError(field + " must be a JSON object, got " + value.type_name());
}

}  // namespace genworld
