// Navigation semantics shared by every World, mirroring bridge/actions.py: keys map to
// continuous nav vectors, and integrate_nav moves the camera. The C++ core must move a
// camera exactly as MuJoCo and the generative model do for shadow mode and evaluation.
#pragma once

#include <array>

#include "genworld/conventions.h"

namespace genworld {

constexpr int kNumNavKeys = 9;
constexpr int kNavDim = 6;
constexpr int kHandDim = 14;
// Continuous-nav components, in the order of the Box(6) action.
enum NavComponent { kForward = 0, kRight = 1, kUp = 2, kYaw = 3, kPitch = 4, kRoll = 5 };

using NavVector = std::array<double, kNavDim>;

struct NavLimits {
  double max_translation = 0.15;          // metres per step at |action| = 1
  double max_rotation = deg2rad(10.0);    // radians per step at |action| = 1
  double max_pitch = deg2rad(80.0);       // |pitch| clamp so walking agents never flip
};

// WorldScape keys: 0 noop, 1 W, 2 A, 3 S, 4 D, 5 Q (yaw left), 6 E (yaw right), 7 R (pitch
// up), 8 F (pitch down). Throws std::out_of_range outside [0, 9).
NavVector key_to_nav(int key);

// Horizontal forward and right unit vectors of a camera (pitch ignored).
void heading_frame(const Mat4& pose, Vec3* forward, Vec3* right);

// Camera pitch in radians, positive looking up.
double pitch_of(const Mat4& pose);

// Camera pose after one navigation step (before any collision check).
Mat4 integrate_nav(const Mat4& pose, const NavVector& nav, const NavLimits& limits = NavLimits{});

}  // namespace genworld
