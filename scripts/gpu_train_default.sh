#!/usr/bin/env bash
# The default model's GPU job, in two calls of at most 10 minutes on one H100/H200
# (the lent machines' per-command limit), with the work directory kept between them:
#
#   bash scripts/gpu_train_default.sh train WORK   # data, a speed probe, training in the background
#   bash scripts/gpu_train_default.sh finish WORK  # wait for training, evaluate, pack the results
#
# `train` sizes the run from the probe so it ends in about TRAIN_SECONDS (default 480): the
# learning-rate schedule and the curriculum phases follow --steps, so the step count must
# fit the time rather than be cut by --max-minutes.
#
# INIT=CKPT continues from a trained checkpoint's weights: the anchor is then in from the first
# step (the condition curriculum of WorldFM §2.4.1 already ran in the run that made CKPT).
# Training is host-bound at small batches (~10k kernel launches per step for a 1.3 M-parameter
# model), so a larger BATCH_SIZE costs little time per step.
set -euo pipefail

PHASE=${1:?usage: gpu_train_default.sh train|finish WORK}
WORK=${2:?usage: gpu_train_default.sh train|finish WORK}
TRAIN_SECONDS=${TRAIN_SECONDS:-480}
BATCH_SIZE=${BATCH_SIZE:-48}
LOADER_WORKERS=${LOADER_WORKERS:-6}
LR=${LR:-5e-4}
GT_FORCING_START=${GT_FORCING_START:-0.6}
EXTRA=(--lr "$LR" --gt-forcing-start "$GT_FORCING_START")
if [ -n "${INIT:-}" ]; then
  EXTRA+=(--init "$INIT" --injection-start 0 --injection-end 0)
fi
EVAL_EPISODES=${EVAL_EPISODES:-2}
EVAL_HORIZON=${EVAL_HORIZON:-128}
GENWORLD=${GENWORLD:-"python3 -m sim_env.cli"}
export GENWORLD
DATA=(rooms_random rooms_spiral rooms_loop tabletop_random tabletop_spiral)
mkdir -p "$WORK"

if [ "$PHASE" = train ]; then
  call_start=$(date +%s)
  bash scripts/make_training_data.sh "$WORK/data" "${ROOMS_EPISODES:-400}" "${TABLETOP_EPISODES:-160}" \
    "${EPISODE_STEPS:-128}" "${WORKERS:-14}" 2>&1 | grep -v "it/s\]" | tail -8
  paths=("${DATA[@]/#/$WORK/data/}")
  probe_steps=${PROBE_STEPS:-120}
  start=$(date +%s.%N)
  $GENWORLD train --config tiny64 --steps $probe_steps --batch-size "$BATCH_SIZE" --workers "$LOADER_WORKERS" \
    "${EXTRA[@]}" --gt-forcing-start 0.5 --out "$WORK/probe.safetensors" --logdir '' --data "${paths[@]}" \
    > "$WORK/probe.log" 2>&1
  probe_s=$(python3 -c "import time; print(time.time() - $start)")
  # Size from the probe's own loop speed (its summary), less the start-up the real run pays too:
  # the wall time of a short probe is mostly start-up and under-counts the speed 1.5-2x.
  steps=$(python3 - "$WORK/probe.safetensors.summary.json" "$probe_s" "$probe_steps" "$TRAIN_SECONDS" <<'PY'
import json, sys
summary, wall, probe_steps, budget = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
loop = json.load(open(summary))
startup = max(wall - loop["seconds"], 0.0)
print(max(probe_steps, int(loop["steps_per_s"] * max(budget - startup, 0.0)) // 50 * 50))
PY
)
  echo "probe: $probe_steps steps (half of them with ground-truth forcing) in ${probe_s} s wall -> $steps training steps"
  echo "$steps" > "$WORK/steps"
  setsid nohup $GENWORLD train --config tiny64 --steps "$steps" --max-minutes 9.5 --batch-size "$BATCH_SIZE" \
    --workers "$LOADER_WORKERS" "${EXTRA[@]}" --logdir "${LOGDIR-$WORK/tb}" --out "$WORK/tiny64.safetensors" \
    --data "${paths[@]}" \
    > "$WORK/train.log" 2>&1 < /dev/null &
  echo $! > "$WORK/train.pid"
  echo "training started (pid $(cat "$WORK/train.pid"))"
  # Keep this call busy until CALL_SECONDS so the machine is held; `finish` picks up from here.
  while kill -0 "$(cat "$WORK/train.pid")" 2>/dev/null && [ $(($(date +%s) - call_start)) -lt "${CALL_SECONDS:-560}" ]; do
    sleep 5
  done
  tr '\r' '\n' < "$WORK/train.log" | grep -v "^\s*$" | tail -2
  exit 0
fi

pid=$(cat "$WORK/train.pid")
while kill -0 "$pid" 2>/dev/null; do sleep 5; done
tr '\r' '\n' < "$WORK/train.log" | grep -v "^\s*$" | tail -5
$GENWORLD eval --checkpoint "$WORK/tiny64.safetensors" --world mujoco --episodes "$EVAL_EPISODES" \
  --horizon "$EVAL_HORIZON" --seed-offset 100000 --out "$WORK/eval/report.json" --video "$WORK/eval/videos" \
  2>&1 | tr '\r' '\n' | grep -v "it/s\]" | tail -20
ls -l "$WORK/tiny64.safetensors"
