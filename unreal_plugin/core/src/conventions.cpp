// Mirrors bridge/conventions.py function by function; see the header for conventions.
#include "genworld/conventions.h"

#include <cmath>
#include <stdexcept>

namespace genworld {
namespace {
// Below this a quaternion component counts as zero (canonical sign) or a norm as degenerate.
constexpr double kQuatEps = 1e-12;
constexpr double kSmallAngle = 1e-12;
// look_at: when the view direction is this close to `up`, any right vector will do.
constexpr double kParallelEps = 1e-9;

// Mirrors the Y axis: the handedness flip between Unreal and GenWorld world frames.
Vec3 flip_y(const Vec3& v) { return {v[0], -v[1], v[2]}; }
Vec3 neg(const Vec3& v) { return {-v[0], -v[1], -v[2]}; }
Mat3 from_columns(const Vec3& a, const Vec3& b, const Vec3& c) {
  return {{{a[0], b[0], c[0]}, {a[1], b[1], c[1]}, {a[2], b[2], c[2]}}};
}
}  // namespace

Mat3 identity3() { return {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}; }
Mat4 identity4() { return {{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}}; }

Mat3 mul(const Mat3& a, const Mat3& b) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) r[i][j] += a[i][k] * b[k][j];
  return r;
}

Mat4 mul(const Mat4& a, const Mat4& b) {
  Mat4 r{};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k) r[i][j] += a[i][k] * b[k][j];
  return r;
}

Vec3 mul(const Mat3& a, const Vec3& v) {
  return {a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2], a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
          a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2]};
}

Mat3 transpose(const Mat3& a) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i][j] = a[j][i];
  return r;
}

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& v) { return std::sqrt(dot(v, v)); }
Vec3 column(const Mat3& m, int c) { return {m[0][c], m[1][c], m[2][c]}; }

Mat3 rotation_of(const Mat4& T) {
  Mat3 R{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) R[i][j] = T[i][j];
  return R;
}
Vec3 translation_of(const Mat4& T) { return {T[0][3], T[1][3], T[2][3]}; }

// --------------------------------------------------------------------------- rotations
Quat normalize_quat(const Quat& q) {
  const double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  if (!std::isfinite(n) || n < kQuatEps) throw std::invalid_argument("quaternion must be finite and non-zero");
  Quat u{q[0] / n, q[1] / n, q[2] / n, q[3] / n};
  // q and -q are the same rotation: the first non-zero component positive picks one.
  double leading = u[0];
  for (double c : u) {
    if (std::abs(c) > kQuatEps) {
      leading = c;
      break;
    }
  }
  if (leading < 0) u = {-u[0], -u[1], -u[2], -u[3]};
  return u;
}

Mat3 quat_to_matrix(const Quat& q_in) {
  const Quat q = normalize_quat(q_in);
  const double w = q[0], x = q[1], y = q[2], z = q[3];
  return {{{1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)},
           {2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)},
           {2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)}}};
}

Quat matrix_to_quat(const Mat3& R) {
  const double r00 = R[0][0], r01 = R[0][1], r02 = R[0][2];
  const double r10 = R[1][0], r11 = R[1][1], r12 = R[1][2];
  const double r20 = R[2][0], r21 = R[2][1], r22 = R[2][2];
  const double trace = r00 + r11 + r22;
  if (trace > 0) {
    const double s = 2.0 * std::sqrt(1.0 + trace);
    return normalize_quat({0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s});
  }
  if (r00 > r11 && r00 > r22) {
    const double s = 2.0 * std::sqrt(1.0 + r00 - r11 - r22);
    return normalize_quat({(r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s});
  }
  if (r11 > r22) {
    const double s = 2.0 * std::sqrt(1.0 + r11 - r00 - r22);
    return normalize_quat({(r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s});
  }
  const double s = 2.0 * std::sqrt(1.0 + r22 - r00 - r11);
  return normalize_quat({(r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s});
}

Mat3 skew(const Vec3& v) { return {{{0.0, -v[2], v[1]}, {v[2], 0.0, -v[0]}, {-v[1], v[0], 0.0}}}; }

Mat3 axis_angle_to_matrix(const Vec3& rotvec) {
  const double angle = norm(rotvec);
  Mat3 out = identity3();
  if (angle < kSmallAngle) {  // first-order: I + [v]x, as the Python side does
    const Mat3 k = skew(rotvec);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) out[i][j] += k[i][j];
    return out;
  }
  const Mat3 k = skew({rotvec[0] / angle, rotvec[1] / angle, rotvec[2] / angle});
  const Mat3 kk = mul(k, k);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) out[i][j] += std::sin(angle) * k[i][j] + (1 - std::cos(angle)) * kk[i][j];
  return out;
}

Vec3 matrix_to_axis_angle(const Mat3& R) {
  const Quat q = matrix_to_quat(R);
  const double s = std::sqrt(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  if (s < kSmallAngle) return {0.0, 0.0, 0.0};
  const double angle = 2.0 * std::atan2(s, q[0]);
  return {q[1] / s * angle, q[2] / s * angle, q[3] / s * angle};
}

Mat3 rot_x(double a) { return {{{1, 0, 0}, {0, std::cos(a), -std::sin(a)}, {0, std::sin(a), std::cos(a)}}}; }
Mat3 rot_y(double a) { return {{{std::cos(a), 0, std::sin(a)}, {0, 1, 0}, {-std::sin(a), 0, std::cos(a)}}}; }
Mat3 rot_z(double a) { return {{{std::cos(a), -std::sin(a), 0}, {std::sin(a), std::cos(a), 0}, {0, 0, 1}}}; }

// --------------------------------------------------------------------------- SE(3)
Mat4 se3(const Mat3& R, const Vec3& t) {
  Mat4 T = identity4();
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) T[i][j] = R[i][j];
    T[i][3] = t[i];
  }
  return T;
}

Mat4 se3_inverse(const Mat4& T) {
  // R^T instead of a general inverse: exact for rigid transforms.
  const Mat3 Rt = transpose(rotation_of(T));
  const Vec3 t = mul(Rt, translation_of(T));
  return se3(Rt, neg(t));
}

Mat4 pose_from_quat(const Vec3& t, const Quat& q) { return se3(quat_to_matrix(q), t); }

bool is_rigid(const Mat4& T, double atol) {
  for (const auto& row : T)
    for (double v : row)
      if (!std::isfinite(v)) return false;
  const Mat3 R = rotation_of(T);
  const Mat3 RtR = mul(transpose(R), R);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (std::abs(RtR[i][j] - (i == j ? 1.0 : 0.0)) > atol) return false;
  const double det = dot(column(R, 0), cross(column(R, 1), column(R, 2)));
  if (std::abs(det - 1.0) >= atol) return false;
  return std::abs(T[3][0]) <= atol && std::abs(T[3][1]) <= atol && std::abs(T[3][2]) <= atol &&
         std::abs(T[3][3] - 1.0) <= atol;
}

Mat4 look_at(const Vec3& eye, const Vec3& target, const Vec3& up) {
  Vec3 z{target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]};
  const double zn = norm(z);
  z = {z[0] / zn, z[1] / zn, z[2] / zn};
  Vec3 x = cross(z, up);
  if (norm(x) < kParallelEps) x = cross(z, std::abs(z[0]) < 0.9 ? Vec3{1, 0, 0} : Vec3{0, 1, 0});
  const double xn = norm(x);
  x = {x[0] / xn, x[1] / xn, x[2] / xn};
  const Vec3 y = cross(z, x);
  return se3(from_columns(x, y, z), eye);
}

// --------------------------------------------------------------------------- cameras
Mat3 intrinsics_from_fov(int width, int height, double fov_deg, const std::string& axis) {
  if (axis != "vertical" && axis != "horizontal")
    throw std::invalid_argument("axis must be 'vertical' or 'horizontal', got '" + axis + "'");
  if (!(fov_deg > 0.0 && fov_deg < 180.0)) throw std::invalid_argument("fov_deg must be in (0, 180)");
  const double extent = axis == "vertical" ? height : width;
  const double f = 0.5 * extent / std::tan(deg2rad(fov_deg) / 2.0);
  // Pixel centres at integer coordinates: a centred camera's principal point is (W-1)/2.
  return {{{f, 0.0, (width - 1) / 2.0}, {0.0, f, (height - 1) / 2.0}, {0.0, 0.0, 1.0}}};
}

Projection project(const Mat3& K, const Vec3& p) {
  const double z = p[2];
  return {K[0][0] * p[0] / z + K[0][2], K[1][1] * p[1] / z + K[1][2], z};
}

// --------------------------------------------------------------------------- Unreal
Mat3 ue_rotator_to_matrix(double pitch_deg, double yaw_deg, double roll_deg) {
  // The published FRotationMatrix layout (rows = axes), transposed into columns.
  const double p = deg2rad(pitch_deg), y = deg2rad(yaw_deg), r = deg2rad(roll_deg);
  const double sp = std::sin(p), cp = std::cos(p), sy = std::sin(y), cy = std::cos(y);
  const double sr = std::sin(r), cr = std::cos(r);
  const Vec3 x_axis{cp * cy, cp * sy, sp};
  const Vec3 y_axis{sr * sp * cy - cr * sy, sr * sp * sy + cr * cy, -sr * cp};
  const Vec3 z_axis{-(cr * sp * cy + sr * sy), cy * sr - cr * sp * sy, cr * cp};
  return from_columns(x_axis, y_axis, z_axis);
}

Vec3 ue_matrix_to_rotator(const Mat3& R) {
  const Vec3 x = column(R, 0), y = column(R, 1), z = column(R, 2);
  const double pitch = rad2deg(std::atan2(x[2], std::hypot(x[0], x[1])));
  const double yaw = rad2deg(std::atan2(x[1], x[0]));
  const double roll = rad2deg(std::atan2(-y[2], z[2]));  // y_z = -sr*cp, z_z = cr*cp
  return {pitch, yaw, roll};
}

Vec3 ue_location_to_world(const Vec3& cm) {
  const Vec3 f = flip_y(cm);
  return {f[0] / kUeCmPerM, f[1] / kUeCmPerM, f[2] / kUeCmPerM};
}

Vec3 world_to_ue_location(const Vec3& m) {
  const Vec3 f = flip_y(m);
  return {f[0] * kUeCmPerM, f[1] * kUeCmPerM, f[2] * kUeCmPerM};
}

Mat4 ue_camera_to_pose(const Vec3& location_cm, const Vec3& rotator_deg) {
  // OpenCV axes in Unreal terms: x = +Y (right), y = -Z (down), z = +X (forward), each
  // mirrored into GenWorld's frame; the two mirror flips cancel into a proper rotation.
  const Mat3 R_ue = ue_rotator_to_matrix(rotator_deg[0], rotator_deg[1], rotator_deg[2]);
  const Vec3 forward = column(R_ue, 0), right = column(R_ue, 1), up = column(R_ue, 2);
  const Mat3 R = from_columns(flip_y(right), neg(flip_y(up)), flip_y(forward));
  return se3(R, ue_location_to_world(location_cm));
}

UeCamera pose_to_ue_camera(const Mat4& T) {
  const Mat3 R = rotation_of(T);
  const Vec3 x_cv = column(R, 0), y_cv = column(R, 1), z_cv = column(R, 2);
  const Mat3 R_ue = from_columns(flip_y(z_cv), flip_y(x_cv), neg(flip_y(y_cv)));
  return {world_to_ue_location(translation_of(T)), ue_matrix_to_rotator(R_ue)};
}

}  // namespace genworld
