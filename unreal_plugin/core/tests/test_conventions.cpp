// Every case of tests/data/conventions_vectors.json (the vectors the Python tests use),
// with the file's atol. Usage: test_conventions PATH/TO/conventions_vectors.json
#include <fstream>
#include <nlohmann/json.hpp>

#include "genworld/conventions.h"
#include "test_util.h"

using namespace genworld;
using nlohmann::json;

namespace {
double g_atol = 0.0;

Vec3 vec3(const json& j) { return {j[0].get<double>(), j[1].get<double>(), j[2].get<double>()}; }
Mat3 mat3(const json& j) {
  Mat3 m{};
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k) m[i][k] = j[i][k].get<double>();
  return m;
}
Mat4 mat4(const json& j) {
  Mat4 m{};
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 4; ++k) m[i][k] = j[i][k].get<double>();
  return m;
}
template <class M>
void check_matrix(const M& got, const json& expected, const std::string& what) {
  for (size_t i = 0; i < got.size(); ++i)
    for (size_t k = 0; k < got[i].size(); ++k)
      test::check(std::abs(got[i][k] - expected[i][k].get<double>()) <= g_atol,
                  what + "[" + std::to_string(i) + "][" + std::to_string(k) + "]", __FILE__, __LINE__);
}
template <class V>
void check_vector(const V& got, const json& expected, const std::string& what) {
  for (size_t i = 0; i < got.size(); ++i)
    test::check(std::abs(got[i] - expected[i].get<double>()) <= g_atol, what + "[" + std::to_string(i) + "]",
                __FILE__, __LINE__);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: test_conventions conventions_vectors.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  const json v = json::parse(in);
  CHECK(v["format"] == "genworld-conventions-vectors");
  g_atol = v["atol"].get<double>();
  int cases = 0;
  for (const auto& c : v["quat_to_matrix"]) {
    const json& q = c["q"];
    check_matrix(quat_to_matrix({q[0], q[1], q[2], q[3]}), c["R"], "quat_to_matrix"), ++cases;
  }
  for (const auto& c : v["matrix_to_quat"]) {
    const Quat q = matrix_to_quat(mat3(c["R"]));
    check_vector(q, c["q"], "matrix_to_quat"), ++cases;
    // Round trip back to the matrix too.
    check_matrix(quat_to_matrix(q), c["R"], "matrix_to_quat round trip");
  }
  for (const auto& c : v["axis_angle_to_matrix"])
    check_matrix(axis_angle_to_matrix(vec3(c["rotvec"])), c["R"], "axis_angle_to_matrix"), ++cases;
  for (const auto& c : v["intrinsics_from_fov"])
    check_matrix(intrinsics_from_fov(c["width"], c["height"], c["fov_deg"], c["axis"].get<std::string>()), c["K"],
                 "intrinsics_from_fov"), ++cases;
  for (const auto& c : v["project"]) {
    const Projection p = project(mat3(c["K"]), vec3(c["point_cam"]));
    CHECK_NEAR(p.u, c["pixel"][0].get<double>(), g_atol);
    CHECK_NEAR(p.v, c["pixel"][1].get<double>(), g_atol);
    CHECK_NEAR(p.depth, c["depth"].get<double>(), g_atol);
    ++cases;
  }
  for (const auto& c : v["ue_location_to_world"]) {
    check_vector(ue_location_to_world(vec3(c["location_cm"])), c["position_m"], "ue_location_to_world"), ++cases;
    check_vector(world_to_ue_location(vec3(c["position_m"])), c["location_cm"], "world_to_ue_location");
  }
  for (const auto& c : v["ue_camera_to_pose"]) {
    const Mat4 pose = ue_camera_to_pose(vec3(c["location_cm"]), vec3(c["rotator_deg"]));
    check_matrix(pose, c["pose"], "ue_camera_to_pose"), ++cases;
    // The inverse must give back a camera with the same pose (rotators are not unique
    // at pitch ±90°, so compare poses rather than angles).
    const UeCamera back = pose_to_ue_camera(pose);
    check_matrix(ue_camera_to_pose(back.location_cm, back.rotator_deg), c["pose"], "pose_to_ue_camera round trip");
  }
  for (const auto& c : v["se3_inverse"]) check_matrix(se3_inverse(mat4(c["T"])), c["T_inv"], "se3_inverse"), ++cases;
  std::cout << "conventions vectors: " << cases << " cases\n";
  CHECK(cases > 20);
  return test::finish("test_conventions");
}
