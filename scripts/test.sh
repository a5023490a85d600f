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

printf '\n== ruff check\n'
"$PY" -m ruff check .

printf '\n== pytest\n'
"$PY" -m pytest -q -p no:cacheprovider --durations=15 "$@"
