#!/usr/bin/env bash
# Installs everything the test suite needs (system packages included) and runs it.
# Works on a fresh Debian machine as root (CI) and on a developer machine with sudo.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh --dev

PY=${PYTHON:-python3}
# Headless rendering backend: EGL on NVIDIA machines, OSMesa (software) elsewhere.
if [ -z "${MUJOCO_GL:-}" ]; then
  if [ -e /dev/nvidiactl ]; then export MUJOCO_GL=egl; else export MUJOCO_GL=osmesa; fi
fi
export PYOPENGL_PLATFORM=$MUJOCO_GL
printf '\n== MUJOCO_GL=%s\n' "$MUJOCO_GL"

# The UE-free C++ core (unreal_plugin/core): system gRPC/protobuf, built with CMake, then
# exercised by tests/unreal_plugin (C++ unit tests + the Python client's conformance suite).
# GENWORLD_REQUIRE_CORE makes those tests fail, not skip, if the core is unavailable.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
core_apt=()
command -v cmake >/dev/null 2>&1 || core_apt+=(cmake)
command -v grpc_cpp_plugin >/dev/null 2>&1 || core_apt+=(protobuf-compiler-grpc)
command -v protoc >/dev/null 2>&1 || core_apt+=(protobuf-compiler)
[ -f /usr/include/grpcpp/grpcpp.h ] || core_apt+=(libgrpc++-dev)
[ -f /usr/include/google/protobuf/message.h ] || core_apt+=(libprotobuf-dev)
[ -f /usr/include/nlohmann/json.hpp ] || core_apt+=(nlohmann-json3-dev)
if [ ${#core_apt[@]} -gt 0 ]; then
  printf '\n== apt-get install %s\n' "${core_apt[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${core_apt[@]}"
fi
printf '\n== build unreal_plugin/core\n'
cmake -S unreal_plugin/core -B build/core -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/core -j2
export GENWORLD_REQUIRE_CORE=1
export GENWORLD_CORE_BUILD=build/core

printf '\n== ruff check\n'
"$PY" -m ruff check .

printf '\n== pytest\n'
"$PY" -m pytest -q -p no:cacheprovider --durations=15 "$@"
