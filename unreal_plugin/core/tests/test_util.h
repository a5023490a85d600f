// A tiny test runner: CHECK records failures with file:line, main() returns non-zero.
#pragma once

#include <cmath>
#include <iostream>
#include <string>

namespace test {
inline int& failures() {
  static int count = 0;
  return count;
}
inline int& checks() {
  static int count = 0;
  return count;
}
inline void check(bool ok, const std::string& what, const char* file, int line) {
  ++checks();
  if (!ok) {
    ++failures();
    std::cerr << file << ":" << line << ": FAILED " << what << "\n";
  }
}
inline int finish(const char* name) {
  std::cout << name << ": " << checks() << " checks, " << failures() << " failures\n";
  return failures() == 0 ? 0 : 1;
}
}  // namespace test

#define CHECK(cond) test::check((cond), #cond, __FILE__, __LINE__)
#define CHECK_NEAR(a, b, tol) \
  test::check(std::abs((a) - (b)) <= (tol), #a " ~ " #b " (" + std::to_string(a) + " vs " + std::to_string(b) + ")", __FILE__, __LINE__)
