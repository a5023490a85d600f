#!/usr/bin/env bash
# Installs GenWorld and what it needs on a fresh Debian/Ubuntu machine (root or sudo).
# Usage: bash scripts/install.sh [--dev]     (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

# System packages: an off-screen OpenGL for MuJoCo on machines without a GPU, and a C
# compiler with Python's headers for the optional frame codec (bridge/_native; without
# them the install still succeeds and the pure-Python codec is used).
need_apt=()
ldconfig -p | grep -q libOSMesa.so || need_apt+=(libosmesa6)
ldconfig -p | grep -q 'libGL.so.1' || need_apt+=(libgl1)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
"${PYTHON:-python3}" -c 'import os, sysconfig; os.stat(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
  >/dev/null 2>&1 || need_apt+=(python3-dev)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "apt-get install ${need_apt[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# Without a GPU, install the CPU build of torch first so that the project's `torch`
# requirement is already satisfied and no CUDA wheels are pulled.
PY=${PYTHON:-python3}
if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    log "pip install torch==2.13.0 (CPU build)"
    "$PY" -m pip install -q "torch==2.13.0" \
      || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
log "pip install -e .$extras"
"$PY" -m pip install -q -e ".$extras"
