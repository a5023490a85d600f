// Conversions between the engine-side values (engine_adapter.h) and genworld.v1 messages,
// mirroring bridge/wire.py. Every *_from_proto validates and throws InvalidArgumentError
// naming the offending field, so nothing malformed reaches an engine. Private: includes
// generated code.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "genworld/engine_adapter.h"
#include "genworld/v1/world_service.pb.h"

namespace genworld {

namespace v1 = ::genworld::v1;

// |‖q‖ − 1| above this means the sender did not send a rotation (float32 noise is fine).
constexpr double kQuatNormTolerance = 1e-3;

Mat4 pose_from_proto(const v1::Pose& msg, const std::string& field);
void pose_to_proto(const Mat4& pose, v1::Pose* msg);

std::map<std::string, Action> actions_from_proto(const google::protobuf::RepeatedPtrField<v1::Action>& msgs,
                                                 const std::vector<std::string>& agent_ids,
                                                 const std::string& field = "StepRequest.actions");

// A complete Frame (RAW planes). A malformed observation is the engine's fault: WorldError.
void frame_to_proto(const std::string& agent_id, const Observation& obs, v1::Frame* frame);
v1::FrameSet frameset_to_proto(uint64_t step_id, const Observations& observations);

std::array<int, 3> parse_semver(const std::string& text, const std::string& field);

// Throws InvalidArgumentError unless `text` is empty or a JSON object.
void check_options_json(const std::string& text, const std::string& field = "ResetRequest.options_json");

// "nan", "inf", "-inf" or the shortest round-trip decimal, like Python's repr.
std::string format_double(double v);

}  // namespace genworld
