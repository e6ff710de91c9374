#!/usr/bin/env bash
# GPU check, one short script: fine-tune on AnnoMI, then score 1M messages on the GPU.
# Prints JSON lines; run it where `make` has built .venv (or set PYTHON to a Python with
# Techne's requirements and CUDA torch). Expects ../shared/data/annomi/AnnoMI-simple.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible to torch'"
# 1. The fine-tune recipe on the full AnnoMI train split (bf16 autocast on CUDA).
"$PYTHON" bench/finetune_annomi.py --device cuda --log /dev/null
# 2. Bulk scoring: 1,000,000 messages through a fine-tuned model (1 epoch), then the embed one.
"$PYTHON" bench/predict_bench.py --backend finetune --epochs 1 --device cuda --messages 1000000 --batch-size 512
"$PYTHON" bench/predict_bench.py --backend embed --device cuda --messages 1000000 --batch-size 512
