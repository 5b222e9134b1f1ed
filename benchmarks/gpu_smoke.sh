#!/usr/bin/env bash
# GPU smoke test of the Helpful/Harmless setup: a few steps of recipes/hh/weighted_meta.yaml (FSDP2 over the
# visible GPUs, bf16-mixed, MetaLoop) with models and datasets from local folders, then step time, generated
# tokens per second and peak GPU memory (printed, and written to $OUT/gpu_smoke.json).
#
#   benchmarks/gpu_smoke.sh POLICY HELPFUL_RM HARMLESS_RM ULTRAFEEDBACK BEAVERTAILS [-- extra CLI arguments]
#
# or set the environment variables POLICY, HELPFUL_RM, HARMLESS_RM, ULTRAFEEDBACK, BEAVERTAILS and run it without
# arguments. The folders are what `huggingface-cli download` (or save_pretrained / a dataset clone) writes for
# Qwen/Qwen2-0.5B-Instruct, Ray2333/gpt2-large-{helpful,harmless}-reward_model,
# HuggingFaceH4/ultrafeedback_binarized and PKU-Alignment/BeaverTails. Optional: GPUS (default: all visible),
# STEPS (default 8, one meta-iteration; the first step is reported apart as warm-up), OUT (default
# lightning_logs/gpu_smoke), PYTHON (default: python). Example:
#
#   STEPS=16 benchmarks/gpu_smoke.sh /models/qwen /models/rm-help /models/rm-harm /data/uf /data/bt \
#       -- --model.init_args.policy.init_args.max_new_tokens=128
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"

if [[ $# -gt 0 && "$1" != "--" ]]; then
    if [[ $# -lt 5 ]]; then
        echo "usage: $0 POLICY HELPFUL_RM HARMLESS_RM ULTRAFEEDBACK BEAVERTAILS [-- extra CLI arguments]" >&2
        exit 2
    fi
    export POLICY="$1" HELPFUL_RM="$2" HARMLESS_RM="$3" ULTRAFEEDBACK="$4" BEAVERTAILS="$5"
    shift 5
fi
for name in POLICY HELPFUL_RM HARMLESS_RM ULTRAFEEDBACK BEAVERTAILS; do
    if [[ -z "${!name:-}" || ! -e "${!name}" ]]; then
        echo "$name must name an existing local folder (got '${!name:-}')" >&2
        exit 2
    fi
done
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
    echo "no CUDA GPU found (nvidia-smi); this smoke test needs one" >&2
    exit 2
fi
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader

# No network needed: everything is local.
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$python" "$here/gpu_smoke_report.py" "$@"
