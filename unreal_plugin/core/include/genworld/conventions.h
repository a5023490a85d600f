// Coordinate conventions, mirroring bridge/conventions.py (ARCHITECTURE.md §3).
//
// World: right-handed, Z up, metres. Camera: OpenCV (x right, y down, z forward).
// Poses: 4x4 camera-to-world. Quaternions: (w, x, y, z), canonical sign (first non-zero
// component positive). K: pixel centres at integer coordinates. Unreal (left-handed,
// X forward, Y right, Z up, cm, degrees) is converted here and only here. Both sides are
// checked against tests/data/conventions_vectors.json.
#pragma once

#include <array>
#include <string>

namespace genworld {

using Vec3 = std::array<double, 3>;
using Quat = std::array<double, 4>;  // (w, x, y, z)
using Mat3 = std::array<std::array<double, 3>, 3>;
using Mat4 = std::array<std::array<double, 4>, 4>;

constexpr double kUeCmPerM = 100.0;
constexpr double kPi = 3.14159265358979323846;

inline double deg2rad(double deg) { return deg * kPi / 180.0; }
inline double rad2deg(double rad) { return rad * 180.0 / kPi; }

Mat3 identity3();
Mat4 identity4();
Mat3 mul(const Mat3& a, const Mat3& b);
Mat4 mul(const Mat4& a, const Mat4& b);
Vec3 mul(const Mat3& a, const Vec3& v);
Mat3 transpose(const Mat3& a);
Vec3 cross(const Vec3& a, const Vec3& b);
double dot(const Vec3& a, const Vec3& b);
double norm(const Vec3& v);
Vec3 column(const Mat3& m, int c);
Mat3 rotation_of(const Mat4& T);
Vec3 translation_of(const Mat4& T);

// Rotations.
Quat normalize_quat(const Quat& q);  // throws std::invalid_argument on zero/non-finite
Mat3 quat_to_matrix(const Quat& q);
Quat matrix_to_quat(const Mat3& R);   // Shepperd's method, canonical sign
Mat3 skew(const Vec3& v);
Mat3 axis_angle_to_matrix(const Vec3& rotvec);
Vec3 matrix_to_axis_angle(const Mat3& R);
Mat3 rot_x(double angle);
Mat3 rot_y(double angle);
Mat3 rot_z(double angle);

// SE(3).
Mat4 se3(const Mat3& R, const Vec3& t);
Mat4 se3_inverse(const Mat4& T);
Mat4 pose_from_quat(const Vec3& t, const Quat& q);
bool is_rigid(const Mat4& T, double atol = 1e-6);
Mat4 look_at(const Vec3& eye, const Vec3& target, const Vec3& up = {0.0, 0.0, 1.0});

// Cameras. `axis` is "vertical" (MuJoCo fovy) or "horizontal" (Unreal FieldOfView).
Mat3 intrinsics_from_fov(int width, int height, double fov_deg, const std::string& axis = "vertical");
struct Projection {
  double u, v, depth;
};
Projection project(const Mat3& K, const Vec3& point_cam);

// Unreal.
Mat3 ue_rotator_to_matrix(double pitch_deg, double yaw_deg, double roll_deg);
Vec3 ue_matrix_to_rotator(const Mat3& R_ue);  // (pitch, yaw, roll) degrees
Vec3 ue_location_to_world(const Vec3& location_cm);
Vec3 world_to_ue_location(const Vec3& position_m);
Mat4 ue_camera_to_pose(const Vec3& location_cm, const Vec3& rotator_deg);
struct UeCamera {
  Vec3 location_cm;
  Vec3 rotator_deg;  // pitch, yaw, roll
};
UeCamera pose_to_ue_camera(const Mat4& T);

}  // namespace genworld
