// Navigation cases derived by hand from bridge/actions.py semantics.
#include "genworld/navigation.h"
#include "test_util.h"

using namespace genworld;

namespace {
constexpr double kTol = 1e-12;

// A level camera at `eye` looking along world +X (OpenCV axes: x = -Y, y = -Z, z = +X).
Mat4 level_camera_x(const Vec3& eye) { return look_at(eye, {eye[0] + 1.0, eye[1], eye[2]}); }
}  // namespace

int main() {
  const NavLimits limits;
  CHECK_NEAR(limits.max_translation, 0.15, kTol);
  CHECK_NEAR(limits.max_rotation, deg2rad(10.0), kTol);
  CHECK_NEAR(limits.max_pitch, deg2rad(80.0), kTol);

  // Keys map onto the continuous components.
  CHECK(key_to_nav(0) == NavVector{});
  CHECK(key_to_nav(1)[kForward] == 1.0 && key_to_nav(3)[kForward] == -1.0);
  CHECK(key_to_nav(2)[kRight] == -1.0 && key_to_nav(4)[kRight] == 1.0);
  CHECK(key_to_nav(5)[kYaw] == 1.0 && key_to_nav(6)[kYaw] == -1.0);
  CHECK(key_to_nav(7)[kPitch] == 1.0 && key_to_nav(8)[kPitch] == -1.0);
  bool threw = false;
  try {
    key_to_nav(9);
  } catch (const std::out_of_range&) {
    threw = true;
  }
  CHECK(threw);

  const Mat4 start = level_camera_x({1.0, 2.0, 1.5});
  // W moves 0.15 m along +X, keeping the orientation.
  Mat4 p = integrate_nav(start, key_to_nav(1), limits);
  CHECK_NEAR(p[0][3], 1.15, kTol);
  CHECK_NEAR(p[1][3], 2.0, kTol);
  CHECK_NEAR(p[2][3], 1.5, kTol);
  // D (right) moves along world -Y when looking along +X.
  p = integrate_nav(start, key_to_nav(4), limits);
  CHECK_NEAR(p[1][3], 1.85, kTol);
  // Q (yaw left, positive) turns the optical axis from +X towards +Y by 10 degrees.
  p = integrate_nav(start, key_to_nav(5), limits);
  CHECK_NEAR(p[0][2], std::cos(deg2rad(10.0)), kTol);
  CHECK_NEAR(p[1][2], std::sin(deg2rad(10.0)), kTol);
  CHECK_NEAR(p[2][2], 0.0, kTol);
  // R (pitch up) tilts the optical axis up by 10 degrees.
  p = integrate_nav(start, key_to_nav(7), limits);
  CHECK_NEAR(pitch_of(p), deg2rad(10.0), kTol);
  CHECK(is_rigid(p));
  // Walking while pitched down still moves horizontally (heading frame).
  Mat4 down = start;
  for (int i = 0; i < 3; ++i) down = integrate_nav(down, key_to_nav(8), limits);
  CHECK_NEAR(pitch_of(down), deg2rad(-30.0), 1e-9);
  p = integrate_nav(down, key_to_nav(1), limits);
  CHECK_NEAR(p[0][3] - down[0][3], 0.15, kTol);
  CHECK_NEAR(p[2][3], down[2][3], kTol);
  // Pitch is clamped at 80 degrees however long R is held.
  Mat4 up = start;
  for (int i = 0; i < 20; ++i) up = integrate_nav(up, key_to_nav(7), limits);
  CHECK_NEAR(pitch_of(up), deg2rad(80.0), 1e-9);
  // Continuous: half forward + full up + roll.
  NavVector nav{};
  nav[kForward] = 0.5;
  nav[kUp] = 1.0;
  nav[kRoll] = 1.0;
  p = integrate_nav(start, nav, limits);
  CHECK_NEAR(p[0][3], 1.075, kTol);
  CHECK_NEAR(p[2][3], 1.65, kTol);
  CHECK_NEAR(p[0][2], 1.0, kTol);  // roll keeps the optical axis
  CHECK(is_rigid(p));
  return test::finish("test_navigation");
}
