// Mirrors bridge/actions.py (key_to_nav, heading_frame, pitch_of, integrate_nav).
#include "genworld/navigation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace genworld {
namespace {
// Below this the optical axis is treated as vertical and image-up picks the heading.
constexpr double kVerticalEps = 1e-6;

double sign(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }  // numpy's sign
}  // namespace

NavVector key_to_nav(int key) {
  if (key < 0 || key >= kNumNavKeys)
    throw std::out_of_range("nav key must be in [0, " + std::to_string(kNumNavKeys) + "), got " +
                            std::to_string(key));
  NavVector nav{};
  switch (key) {
    case 1: nav[kForward] = 1.0; break;
    case 2: nav[kRight] = -1.0; break;
    case 3: nav[kForward] = -1.0; break;
    case 4: nav[kRight] = 1.0; break;
    case 5: nav[kYaw] = 1.0; break;
    case 6: nav[kYaw] = -1.0; break;
    case 7: nav[kPitch] = 1.0; break;
    case 8: nav[kPitch] = -1.0; break;
    default: break;
  }
  return nav;
}

void heading_frame(const Mat4& pose, Vec3* forward, Vec3* right) {
  Vec3 f{pose[0][2], pose[1][2], 0.0};
  if (std::hypot(f[0], f[1]) < kVerticalEps) {
    const double s = sign(pose[2][2]);
    f = {pose[0][1] * s, pose[1][1] * s, 0.0};
  }
  const double n = std::hypot(f[0], f[1]);
  f = {f[0] / n, f[1] / n, 0.0};
  *forward = f;
  *right = {f[1], -f[0], 0.0};  // forward turned -90 degrees about Z
}

double pitch_of(const Mat4& pose) { return std::asin(std::clamp(pose[2][2], -1.0, 1.0)); }

Mat4 integrate_nav(const Mat4& pose, const NavVector& nav, const NavLimits& limits) {
  Vec3 forward, right;
  heading_frame(pose, &forward, &right);
  Vec3 t = translation_of(pose);
  for (int i = 0; i < 3; ++i) {
    const double up = i == 2 ? 1.0 : 0.0;
    t[i] += limits.max_translation * (nav[kForward] * forward[i] + nav[kRight] * right[i] + nav[kUp] * up);
  }
  Mat3 R = mul(rot_z(limits.max_rotation * nav[kYaw]), rotation_of(pose));
  const double current = pitch_of(pose);
  const double target = std::clamp(current + limits.max_rotation * nav[kPitch], -limits.max_pitch,
                                   limits.max_pitch);
  R = mul(R, rot_x(target - current));
  R = mul(R, rot_z(limits.max_rotation * nav[kRoll]));
  return se3(R, t);
}

}  // namespace genworld
