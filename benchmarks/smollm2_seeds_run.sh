#!/usr/bin/env bash
# The runs behind benchmarks/smollm2_seeds.py: for each seed, the preference stage, its own evaluation, and the
# three methods trained from it (Weighted-Meta-GRPO, Weighted-GRPO, Grid-GRPO), each on one thread.
#
#   bash benchmarks/smollm2_seeds_run.sh            # seeds 0 1 2 into runs/i25
#   SEEDS="1" RUNS=/data/i25 bash benchmarks/smollm2_seeds_run.sh
#
# Resumable: a piece whose output already exists (the stage's config.json, a run's summary.json) is skipped, so the
# script can be started again after an interruption. About 4 hours per seed on one core of a laptop-class CPU.
# Then: python benchmarks/smollm2_seeds.py --stage $RUNS/stage_s{0,1,2} --method Weighted-Meta-GRPO
#   $RUNS/meta_s{0,1,2} --method Weighted-GRPO $RUNS/wgrpo_s{0,1,2} --method Grid-GRPO $RUNS/grid_s{0,1,2}
set -euo pipefail
SEEDS=${SEEDS:-"0 1 2"}
RUNS=${RUNS:-runs/i25}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$RUNS"
done_in() { [ -n "$(find "$1" -name summary.json -print -quit 2>/dev/null)" ]; }
for s in $SEEDS; do
  model="$RUNS/model_s$s"
  if [ ! -f "$model/config.json" ]; then
    echo "[$(date +%T)] seed $s: preference stage"
    python recipes/smollm2/preference_stage.py --seed "$s" --out "$model"
  fi
  if ! done_in "$RUNS/stage_s$s"; then
    echo "[$(date +%T)] seed $s: stage evaluation"
    python recipes/train.py validate --config recipes/smollm2/weighted_meta.yaml --seed_everything="$s" \
      --model.init_args.policy.init_args.model="$model" --trainer.default_root_dir="$RUNS/stage_s$s"
  fi
  for method in meta:weighted_meta wgrpo:weighted_grpo grid:grid_grpo; do
    name=${method%%:*} recipe=${method#*:}
    if ! done_in "$RUNS/${name}_s$s"; then
      echo "[$(date +%T)] seed $s: $recipe"
      python recipes/train.py fit --config "recipes/smollm2/$recipe.yaml" --seed_everything="$s" \
        --data.init_args.seed="$s" --model.init_args.policy.init_args.model="$model" \
        --trainer.default_root_dir="$RUNS/${name}_s$s"
    fi
  done
done
echo "[$(date +%T)] all seeds done"
