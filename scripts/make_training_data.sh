#!/usr/bin/env bash
# Record the training data of the default world model (tiny64, 64x64 RGB-D) with MuJoCo.
#
# Usage: scripts/make_training_data.sh OUT_DIR [ROOMS_EPISODES] [TABLETOP_EPISODES] [STEPS] [WORKERS]
#
# Writes OUT_DIR/rooms_random, rooms_spiral, rooms_loop (navigation) and OUT_DIR/tabletop_random,
# tabletop_spiral (static camera, both hands moving) with `genworld record`. Episode i of a
# dataset uses seed SEED_BASE + i; all training seeds lie below 100000, so `genworld eval
# --seed-offset 100000` (its default) evaluates on scenes never seen in training. Re-running
# resumes/extends (more episodes keep the first ones bit-identical).
#
# Defaults (400 + 160 episodes of 128 steps, ~72k frames, ~2 GB) take about 2 minutes with 14
# workers on an H100/H200 host with MUJOCO_GL=egl; on a CPU use osmesa and far fewer episodes.
set -euo pipefail

OUT=${1:?usage: make_training_data.sh OUT_DIR [ROOMS_EPISODES] [TABLETOP_EPISODES] [STEPS] [WORKERS]}
ROOMS_EPISODES=${2:-400}
TABLETOP_EPISODES=${3:-160}
STEPS=${4:-128}
WORKERS=${5:-$(($(nproc) > 2 ? $(nproc) - 2 : 1))}
export MUJOCO_GL=${MUJOCO_GL:-egl}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-$MUJOCO_GL}
GENWORLD=${GENWORLD:-"python -m sim_env.cli"}

record() {  # scene policy episodes seed_base
  local dir="$OUT/${1}_${2}"
  echo "== $dir: $3 episodes x $STEPS steps, seeds $4.., $WORKERS workers"
  $GENWORLD record --world mujoco --scene "$1" --policy "$2" --episodes "$3" --steps "$STEPS" \
    --resolution 64x64 --workers "$WORKERS" --seed "$4" --out "$dir"
}

start=$(date +%s)
# Navigation: random walks cover the scenes, spirals sweep the views, loops revisit them.
record rooms random $((ROOMS_EPISODES / 2)) 0
record rooms spiral $((ROOMS_EPISODES / 4)) 10000
record rooms loop $((ROOMS_EPISODES - ROOMS_EPISODES / 2 - ROOMS_EPISODES / 4)) 20000
# Hands: random wrist motion and grips, and circling wrists, in front of a static camera.
record tabletop random $((TABLETOP_EPISODES * 3 / 4)) 30000
record tabletop spiral $((TABLETOP_EPISODES - TABLETOP_EPISODES * 3 / 4)) 40000
echo "== recorded in $(($(date +%s) - start)) s: $(du -sh "$OUT" | cut -f1) in $OUT"
