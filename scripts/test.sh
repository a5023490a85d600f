#!/usr/bin/env bash
# Installs everything the test suite needs (system packages included) and runs it.
# Works on a fresh Debian machine as root (CI) and on a developer machine with sudo.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# ---- system packages: an off-screen OpenGL for MuJoCo on machines without a GPU.
need_apt=()
ldconfig -p | grep -q libOSMesa.so || need_apt+=(libosmesa6)
ldconfig -p | grep -q 'libGL.so.1' || need_apt+=(libgl1)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# ---- Python packages. Without a GPU, install the CPU build of torch first so that the
# project's `torch` requirement is already satisfied and no CUDA wheels are pulled.
PY=${PYTHON:-python3}
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  has_gpu=1
else
  has_gpu=0
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    log "pip install torch==2.13.0 (CPU build)"
    "$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
log "pip install -e .[dev]"
"$PY" -m pip install -q -e ".[dev]"

# ---- headless rendering backend
if [ -z "${MUJOCO_GL:-}" ]; then
  if [ "$has_gpu" = 1 ]; then export MUJOCO_GL=egl; else export MUJOCO_GL=osmesa; fi
fi
export PYOPENGL_PLATFORM=$MUJOCO_GL
log "MUJOCO_GL=$MUJOCO_GL"

log "ruff check"
"$PY" -m ruff check .

log "pytest"
"$PY" -m pytest -q -p no:cacheprovider --durations=15 "$@"
