// A CPU ray caster. Rays are generated with unit optical-axis component, so the ray
// parameter t at a hit *is* the planar depth (no division by the ray length needed).
// Shading is Lambertian under a fixed directional light: view-independent, so a surface
// point has the same colour in every frame, which the reprojection check relies on.
#include "raycast_scene.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace genworld {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMinHit = 1e-6;
constexpr double kCheckerSize = 0.5;       // metres per ground checker cell
constexpr double kStripeFrequency = 2.5;   // stripes per metre on boxes
constexpr double kSphereBands = 6.0;       // latitude bands per sphere
constexpr double kAmbient = 0.45;
constexpr double kDiffuse = 0.55;
const Vec3 kLight = {0.48, 0.32, 0.82};    // towards the light, roughly normalised
constexpr int kNumBoxes = 7;
constexpr int kNumSpheres = 4;
constexpr double kMinObjectRadius = 2.5;   // keeps the start position free
constexpr double kMaxObjectRadius = 9.0;

// SplitMix64: a tiny portable generator, so scenes do not depend on the std library.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * ((next() >> 11) * 0x1.0p-53); }
};

Rgb random_colour(Rng& rng) { return {rng.uniform(40, 230), rng.uniform(40, 230), rng.uniform(40, 230)}; }

Rgb scale(const Rgb& c, double s) { return {c.r * s, c.g * s, c.b * s}; }

double shade(const Vec3& n) { return kAmbient + kDiffuse * std::max(0.0, dot(n, kLight) / norm(kLight)); }

struct Hit {
  double t = kInf;
  Vec3 normal{0, 0, 1};
  Rgb albedo{0, 0, 0};
};

void hit_ground(const Vec3& o, const Vec3& d, Hit* hit) {
  if (d[2] >= 0.0 || o[2] <= 0.0) return;
  const double t = -o[2] / d[2];
  if (t <= kMinHit || t >= hit->t) return;
  const double x = o[0] + t * d[0], y = o[1] + t * d[1];
  const long cell = static_cast<long>(std::floor(x / kCheckerSize)) + static_cast<long>(std::floor(y / kCheckerSize));
  const bool dark = (cell & 1) != 0;
  // A slow colour drift over the checker makes distant cells distinguishable.
  const double drift = 0.5 + 0.5 * std::sin(0.35 * x) * std::cos(0.27 * y);
  hit->t = t;
  hit->normal = {0, 0, 1};
  hit->albedo = dark ? Rgb{60 + 40 * drift, 70, 90} : Rgb{200, 190 - 50 * drift, 150 + 60 * drift};
}

void hit_box(const Box& box, const Vec3& o, const Vec3& d, Hit* hit) {
  double t_near = -kInf, t_far = kInf;
  int axis = 0;
  for (int i = 0; i < 3; ++i) {
    if (d[i] == 0.0) {
      if (o[i] < box.lo[i] || o[i] > box.hi[i]) return;
      continue;
    }
    double t0 = (box.lo[i] - o[i]) / d[i], t1 = (box.hi[i] - o[i]) / d[i];
    if (t0 > t1) std::swap(t0, t1);
    if (t0 > t_near) {
      t_near = t0;
      axis = i;
    }
    t_far = std::min(t_far, t1);
  }
  if (t_near > t_far || t_near <= kMinHit || t_near >= hit->t) return;
  Vec3 n{0, 0, 0};
  n[axis] = d[axis] > 0 ? -1.0 : 1.0;
  const Vec3 p{o[0] + t_near * d[0], o[1] + t_near * d[1], o[2] + t_near * d[2]};
  const long stripe = static_cast<long>(std::floor(kStripeFrequency * (p[0] + p[1] + p[2])));
  hit->t = t_near;
  hit->normal = n;
  hit->albedo = (stripe & 1) ? box.base : scale(box.base, 0.6);
}

void hit_sphere(const Sphere& s, const Vec3& o, const Vec3& d, Hit* hit) {
  const Vec3 oc{o[0] - s.centre[0], o[1] - s.centre[1], o[2] - s.centre[2]};
  const double a = dot(d, d), b = dot(oc, d), c = dot(oc, oc) - s.radius * s.radius;
  const double disc = b * b - a * c;
  if (disc < 0.0) return;
  const double t = (-b - std::sqrt(disc)) / a;
  if (t <= kMinHit || t >= hit->t) return;
  const Vec3 n{(oc[0] + t * d[0]) / s.radius, (oc[1] + t * d[1]) / s.radius, (oc[2] + t * d[2]) / s.radius};
  const long band = static_cast<long>(std::floor(kSphereBands * (std::asin(std::clamp(n[2], -1.0, 1.0)) / kPi + 0.5)));
  hit->t = t;
  hit->normal = n;
  hit->albedo = (band & 1) ? s.base : Rgb{255 - s.base.r, 255 - s.base.g, 255 - s.base.b};
}

Rgb sky(const Vec3& d) {
  const double up = std::clamp(d[2] / norm(d), 0.0, 1.0);
  return {150 - 90 * up, 190 - 60 * up, 245};
}

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }
}  // namespace

Scene make_scene(uint64_t seed) {
  Rng rng{seed * 0x2545F4914F6CDD1Dull + 1};
  Scene scene;
  auto place = [&](double* x, double* y) {
    const double r = rng.uniform(kMinObjectRadius, kMaxObjectRadius), a = rng.uniform(0.0, 2.0 * kPi);
    *x = r * std::cos(a);
    *y = r * std::sin(a);
  };
  for (int i = 0; i < kNumBoxes; ++i) {
    double x, y;
    place(&x, &y);
    const double sx = rng.uniform(0.3, 0.9), sy = rng.uniform(0.3, 0.9), h = rng.uniform(0.4, 2.5);
    scene.boxes.push_back({{x - sx, y - sy, 0.0}, {x + sx, y + sy, h}, random_colour(rng)});
  }
  for (int i = 0; i < kNumSpheres; ++i) {
    double x, y;
    place(&x, &y);
    const double r = rng.uniform(0.3, 0.8);
    scene.spheres.push_back({{x, y, r + rng.uniform(0.0, 1.2)}, r, random_colour(rng)});
  }
  scene.start_yaw = rng.uniform(-kPi, kPi);
  return scene;
}

void render(const Scene& scene, const Mat4& pose, const Mat3& K, uint32_t width, uint32_t height,
            std::vector<uint8_t>* rgb, std::vector<float>* depth) {
  rgb->assign(static_cast<size_t>(width) * height * 3, 0);
  depth->assign(static_cast<size_t>(width) * height, 0.0f);
  const Mat3 R = rotation_of(pose);
  const Vec3 o = translation_of(pose);
  for (uint32_t v = 0; v < height; ++v) {
    for (uint32_t u = 0; u < width; ++u) {
      // Pixel centres at integer coordinates; unit optical-axis component → t is planar depth.
      const Vec3 d = mul(R, Vec3{(u - K[0][2]) / K[0][0], (v - K[1][2]) / K[1][1], 1.0});
      Hit hit;
      hit_ground(o, d, &hit);
      for (const Box& box : scene.boxes) hit_box(box, o, d, &hit);
      for (const Sphere& s : scene.spheres) hit_sphere(s, o, d, &hit);
      const size_t i = static_cast<size_t>(v) * width + u;
      const Rgb c = std::isfinite(hit.t) ? scale(hit.albedo, shade(hit.normal)) : sky(d);
      (*depth)[i] = static_cast<float>(hit.t);
      (*rgb)[3 * i] = to_byte(c.r);
      (*rgb)[3 * i + 1] = to_byte(c.g);
      (*rgb)[3 * i + 2] = to_byte(c.b);
    }
  }
}

bool collides(const Scene& scene, const Vec3& p, double radius) {
  if (p[2] < radius) return true;
  for (const Box& b : scene.boxes) {
    double dist2 = 0.0;  // squared distance from p to the box
    for (int i = 0; i < 3; ++i) {
      const double excess = std::max({b.lo[i] - p[i], 0.0, p[i] - b.hi[i]});
      dist2 += excess * excess;
    }
    if (dist2 < radius * radius) return true;
  }
  for (const Sphere& s : scene.spheres) {
    const Vec3 d{p[0] - s.centre[0], p[1] - s.centre[1], p[2] - s.centre[2]};
    if (norm(d) < s.radius + radius) return true;
  }
  return false;
}

}  // namespace genworld
