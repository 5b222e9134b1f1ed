#!/usr/bin/env bash
# One command checks a GPU machine with the Helpful/Harmless setup; no arguments and no network needed:
#
#   benchmarks/gpu_smoke.sh
#
# 1. Unless local folders are given, writes randomly initialized models of the real configurations (Qwen2-0.5B
#    policy, two GPT-2-large reward models), tokenizers of their vocabulary sizes and small datasets in the
#    real schemas to $OUT/artifacts (benchmarks/hh_artifacts.py; about 4 GB, a minute or two).
# 2. Trains recipes/hh/weighted_meta.yaml (Weighted-Meta-GRPO) and recipes/hh/weighted_grpo.yaml (Weighted-GRPO)
#    for $STEPS optimizer steps each (default 8: one meta-iteration), FSDP2 over $GPUS GPUs, bf16-mixed, checking
#    after every step that all weights are finite and timing the phases (benchmarks/gpu_smoke.py).
# 3. Runs `validate` from the meta recipe's checkpoint over 3 weights.
# 4. Prints one table and writes $OUT/gpu_smoke.json; exits 1 if a part failed or a weight was not finite.
#
# Environment (all optional): GPUS (default: all visible), STEPS, OUT (default lightning_logs/gpu_smoke),
# PYTHON (default python), SCALE (real or tiny: the stand-ins' size), ACCELERATOR (gpu, or cpu for a dry run),
# ARTIFACTS (a folder hh_artifacts.py wrote earlier: reused, not rebuilt). Arguments after `--` go to the CLI of
# every part, e.g. `benchmarks/gpu_smoke.sh -- --model.init_args.policy.init_args.max_new_tokens=128`.
#
# Real models instead of random ones: put them in a folder with the layout of hh_artifacts.py (policy/,
# helpful_rm/, harmless_rm/, ultrafeedback_binarized/, BeaverTails/) and set ARTIFACTS to it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
out="${OUT:-lightning_logs/gpu_smoke}"
accelerator="${ACCELERATOR:-gpu}"
scale="${SCALE:-real}"
steps="${STEPS:-8}"
extra=()
if [[ $# -gt 0 ]]; then
    if [[ "$1" != "--" ]]; then
        echo "usage: $0 [-- extra CLI arguments]   (settings come from the environment; see the header)" >&2
        exit 2
    fi
    shift
    extra=(-- "$@")
fi

if [[ "$accelerator" == "gpu" ]]; then
    if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
        echo "no CUDA GPU found (nvidia-smi); set ACCELERATOR=cpu for a dry run on the CPU" >&2
        exit 2
    fi
    nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
    gpus="${GPUS:-$(nvidia-smi -L | wc -l)}"
else
    gpus=1
fi

# No network needed: everything is local.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$out"
artifacts="${ARTIFACTS:-$out/artifacts}"
if [[ ! -e "$artifacts/policy/config.json" ]]; then
    "$python" "$here/hh_artifacts.py" "$artifacts" --scale "$scale"
fi

common=(--artifacts "$artifacts" --out "$out" --devices "$gpus" --accelerator "$accelerator" --steps "$steps")
rm -f "$out"/meta.json "$out"/plain.json "$out"/validate.json
# A part that fails is recorded in its JSON file; the other parts still run, and the report says FAILED.
"$python" "$here/gpu_smoke.py" fit meta "${common[@]}" "${extra[@]}" || true
"$python" "$here/gpu_smoke.py" fit plain "${common[@]}" "${extra[@]}" || true
if [[ -e "$out/meta.ckpt" ]]; then
    "$python" "$here/gpu_smoke.py" validate meta "${common[@]}" "${extra[@]}" || true
fi
exec "$python" "$here/gpu_smoke.py" report --out "$out"
