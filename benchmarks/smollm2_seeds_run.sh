#!/usr/bin/env bash
# The runs behind benchmarks/smollm2_seeds.py: for each seed, the preference stage, its own evaluation, and the
# three methods trained from it (Weighted-Meta-GRPO, Weighted-GRPO, Grid-GRPO), each on one thread.
#
#   bash benchmarks/smollm2_seeds_run.sh                     # seeds 0 1 2, every piece
#   SEEDS="1" PIECES="eval meta" bash benchmarks/smollm2_seeds_run.sh   # after the stage, in one shell ...
#   SEEDS="1" PIECES="wgrpo grid" bash benchmarks/smollm2_seeds_run.sh  # ... and in another, side by side
#
# PIECES picks from: stage (the preference stage's model), eval (the stage's own evaluation), meta, wgrpo, grid,
# steer (Weighted-Meta-GRPO with the steering bonus, recipes/smollm2/weighted_meta_steer.yaml) and cross (Grid-GRPO
# with the cross-weight advantage, recipes/smollm2/grid_grpo_cross.yaml).
# A lever (recipes/smollm2/README.md) is a method with more arguments: ARGS goes to its fit, and VARIANT names it,
#   SEEDS=0 PIECES=meta VARIANT=beta0.01 ARGS="--model.init_args.beta=0.01" bash benchmarks/smollm2_seeds_run.sh
# keeps its summary as meta-beta0.01_s0. STAGE_ARGS goes to the preference stage in the same way: the stage's model
# and summary are then kept under the VARIANT too (model-<VARIANT>_s<seed>, stage-<VARIANT>_s<seed>), e.g.
#   SEEDS=2 PIECES="stage grid eval" VARIANT=stage2ep STAGE_ARGS="--epochs 2" bash benchmarks/smollm2_seeds_run.sh
# Run folders (checkpoints, logs, the stage's 517 MB model) go under RUNS (default runs/i25); each finished
# evaluation's summary.json (and frontier.csv, the mean rewards at each evaluation weight) is also copied to
# RESULTS/<piece>_s<seed>/ (default benchmarks/results/smollm2), a few kilobytes kept with the repository; the
# summaries are what smollm2_seeds.py reads.
# Resumable: a piece whose summary is already in RESULTS is skipped, and so is the stage when no piece asked for
# needs it and every piece of its seed is done, so the script can be started again after an interruption or on
# another machine. About 30 minutes for the stage on two threads, 10 for its evaluation and 45-50 per method (96
# steps and the final evaluation) on one core of a laptop-class CPU.
# Then: python benchmarks/smollm2_seeds.py --stage $RESULTS/stage_s{0,1,2} --method Weighted-Meta-GRPO
#   $RESULTS/meta_s{0,1,2} --method Weighted-GRPO $RESULTS/wgrpo_s{0,1,2} --method Grid-GRPO $RESULTS/grid_s{0,1,2}
set -euo pipefail
SEEDS=${SEEDS:-"0 1 2"}
PIECES=${PIECES:-"stage eval meta wgrpo grid"}
RUNS=${RUNS:-runs/i25}
RESULTS=${RESULTS:-benchmarks/results/smollm2}
VARIANT=${VARIANT:-}
ARGS=${ARGS:-}
STAGE_ARGS=${STAGE_ARGS:-}
for given in ARGS STAGE_ARGS; do
  [ -z "${!given}" ] || [ -n "$VARIANT" ] || { echo "$given needs a VARIANT, the name its summaries are kept under" >&2; exit 1; }
done
declare -A RECIPE=([eval]=weighted_meta [meta]=weighted_meta [wgrpo]=weighted_grpo [grid]=grid_grpo
                   [steer]=weighted_meta_steer [cross]=grid_grpo_cross)
mkdir -p "$RUNS" "$RESULTS"
kept() { [ -f "$RESULTS/$1/summary.json" ]; }
name() {  # the folder of piece $1 of seed $2: stage_s0, meta_s0, meta-beta0.01_s0 ...
  if [ "$1" = eval ]; then echo "stage${STAGE_ARGS:+-$VARIANT}_s$2"; else echo "$1${VARIANT:+-$VARIANT}_s$2"; fi
}
keep() {  # copy the one summary.json a finished run wrote into RESULTS, with its frontier.csv when it has one
  local found
  found=$(find "$RUNS/$1" -name summary.json)
  [ "$(printf '%s\n' "$found" | grep -c .)" = 1 ] || { echo "$RUNS/$1: expected one summary.json, found: $found" >&2; exit 1; }
  mkdir -p "$RESULTS/$1" && cp "$found" "$RESULTS/$1/summary.json"
  [ ! -f "$(dirname "$found")/frontier.csv" ] || cp "$(dirname "$found")/frontier.csv" "$RESULTS/$1/frontier.csv"
}
for s in $SEEDS; do
  model="$RUNS/model${STAGE_ARGS:+-$VARIANT}_s$s"
  todo=""
  for piece in $PIECES; do
    [ -n "${RECIPE[$piece]:-}" ] || [ "$piece" = stage ] || { echo "PIECES: unknown piece '$piece'" >&2; exit 1; }
    [ "$piece" = stage ] || kept "$(name "$piece" "$s")" || todo="$todo $piece"
  done
  if [[ " $PIECES " == *" stage "* ]] && [ ! -f "$model/config.json" ]; then
    if [ -n "$todo$STAGE_ARGS" ] || ! { kept "stage_s$s" && kept "meta_s$s" && kept "wgrpo_s$s" && kept "grid_s$s"; }; then
      echo "[$(date +%T)] seed $s: preference stage $STAGE_ARGS"
      python recipes/smollm2/preference_stage.py --seed "$s" --out "$model" $STAGE_ARGS
    fi
  fi
  for piece in $todo; do
    name=$(name "$piece" "$s")
    [ -f "$model/config.json" ] || { echo "seed $s: $piece needs the stage's model $model (PIECES=stage)" >&2; exit 1; }
    rm -rf "${RUNS:?}/$name"  # a half-finished run starts again
    echo "[$(date +%T)] seed $s: $piece"
    if [ "$piece" = eval ]; then
      OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python recipes/train.py validate \
        --config recipes/smollm2/weighted_meta.yaml --seed_everything="$s" \
        --model.init_args.policy.init_args.model="$model" --trainer.default_root_dir="$RUNS/$name"
    else
      OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python recipes/train.py fit \
        --config "recipes/smollm2/${RECIPE[$piece]}.yaml" --seed_everything="$s" --data.init_args.seed="$s" \
        --model.init_args.policy.init_args.model="$model" --trainer.default_root_dir="$RUNS/$name" $ARGS
    fi
    keep "$name"
  done
done
echo "[$(date +%T)] done: $SEEDS ($PIECES)"
