#!/usr/bin/env bash
# Data -> train -> eval of the default tiny64 world model on one GPU, in a ~12-minute budget.
#
# Usage: scripts/train_default_model.sh WORK_DIR [TRAIN_STEPS] [TRAIN_MINUTES] [EVAL_EPISODES] [EVAL_HORIZON]
#
# 1. scripts/make_training_data.sh WORK_DIR/data (sizes: ROOMS_EPISODES, TABLETOP_EPISODES,
#    EPISODE_STEPS, WORKERS environment variables; ~2 min with the defaults);
# 2. genworld train: TRAIN_STEPS steps (default 6000) at batch BATCH_SIZE (default 48), bf16 on
#    CUDA, stopped and checkpointed after TRAIN_MINUTES (default 8) whatever the step count;
#    re-running the script resumes the run from WORK_DIR/tiny64.safetensors.state.pt;
# 3. genworld eval on held-out seeds (100000..) with the two baselines, plots and videos
#    (~2 min with 2 episodes x 128 steps).
# Everything lands in WORK_DIR; copy WORK_DIR/tiny64.safetensors to sim_env/weights/ to ship it.
set -euo pipefail

WORK=${1:?usage: train_default_model.sh WORK_DIR [TRAIN_STEPS] [TRAIN_MINUTES] [EVAL_EPISODES] [EVAL_HORIZON]}
TRAIN_STEPS=${2:-6000}
TRAIN_MINUTES=${3:-8}
EVAL_EPISODES=${4:-2}
EVAL_HORIZON=${5:-128}
BATCH_SIZE=${BATCH_SIZE:-48}
LOADER_WORKERS=${LOADER_WORKERS:-6}
GENWORLD=${GENWORLD:-"python -m sim_env.cli"}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"

t0=$(date +%s)
"$HERE/make_training_data.sh" "$WORK/data" "${ROOMS_EPISODES:-400}" "${TABLETOP_EPISODES:-160}" \
  "${EPISODE_STEPS:-128}" "${WORKERS:-$(($(nproc) > 2 ? $(nproc) - 2 : 1))}"
t1=$(date +%s)

$GENWORLD train --config tiny64 --steps "$TRAIN_STEPS" --max-minutes "$TRAIN_MINUTES" \
  --batch-size "$BATCH_SIZE" --workers "$LOADER_WORKERS" --out "$WORK/tiny64.safetensors" --resume \
  --data "$WORK"/data/rooms_random "$WORK"/data/rooms_spiral "$WORK"/data/rooms_loop \
         "$WORK"/data/tabletop_random "$WORK"/data/tabletop_spiral
t2=$(date +%s)

$GENWORLD eval --checkpoint "$WORK/tiny64.safetensors" --world mujoco --episodes "$EVAL_EPISODES" \
  --horizon "$EVAL_HORIZON" --seed-offset 100000 --out "$WORK/eval/report.json" --video "$WORK/eval/videos"
t3=$(date +%s)

ls -l "$WORK/tiny64.safetensors"
echo "data $((t1 - t0)) s, train $((t2 - t1)) s, eval $((t3 - t2)) s; report: $WORK/eval/report.json"
