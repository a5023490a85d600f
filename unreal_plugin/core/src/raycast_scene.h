// The reference engine's scene: a checkered ground plane, boxes and spheres with
// procedural colours, and a sky at +inf. Private to the core (used by RaycastAdapter).
#pragma once

#include <cstdint>
#include <vector>

#include "genworld/conventions.h"

namespace genworld {

struct Rgb {
  double r, g, b;  // 0..255
};

struct Box {
  Vec3 lo, hi;  // axis-aligned
  Rgb base;
};

struct Sphere {
  Vec3 centre;
  double radius;
  Rgb base;
};

struct Scene {
  std::vector<Box> boxes;
  std::vector<Sphere> spheres;
  Vec3 start_eye{0.0, 0.0, 1.5};
  double start_yaw = 0.0;
};

// A deterministic scene of a seed (same seed → same scene on every platform: the random
// numbers come from our own generator, not std:: distributions).
Scene make_scene(uint64_t seed);

// Renders `scene` from a camera-to-world pose with intrinsics K into rgb (H*W*3) and
// planar depth (H*W).
void render(const Scene& scene, const Mat4& pose, const Mat3& K, uint32_t width, uint32_t height,
            std::vector<uint8_t>* rgb, std::vector<float>* depth);

// Whether a camera sphere of `radius` at `position` overlaps the ground or any primitive.
bool collides(const Scene& scene, const Vec3& position, double radius);

}  // namespace genworld
