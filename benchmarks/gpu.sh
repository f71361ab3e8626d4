#!/usr/bin/env bash
# The GPU measurements of issue 31 in one go, under 8 minutes on one NVIDIA GPU (each step bounded by
# `timeout`). Run from the repository root, after `pip install -e .` with a CUDA build of torch:
#
#     bash benchmarks/gpu.sh [OUT_DIR]      # JSON lines and the sweep's table under OUT_DIR (default gpu-results)
#
# SWEEP_DIR (default OUT_DIR/sweep) is where the real sweep writes its rows.
# 1. the M2 step at MNIST shapes for packs of 8, 32 and 128, bfloat16 and compiled, against the dense
#    bfloat16 matmul speed of the same GPU (sweeper bench prints the ratio in its JSON line); pack 8 eager too,
#    to show what compiling gives;
# 2. a real sweep of about 30 seconds (the digits anchor grid, 1 epoch) on the GPU;
# 3. Jurasinski's Table 1 grid projected on this GPU from its measured steps (four kinds of trial, each
#    compiled: the longest step, so the last).
set -uo pipefail
out=${1:-gpu-results}
sweep=${SWEEP_DIR:-$out/sweep}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.version.cuda)" | tee -a "$out/gpu.txt" || exit 1
timeout 60 sweeper bench --model m2 --shape mnist --pack 8 --device cuda --bf16 | tee -a "$out/step.jsonl"
for pack in 8 32 128; do
    timeout 80 sweeper bench --model m2 --shape mnist --pack "$pack" --device cuda --bf16 --compile | tee -a "$out/step.jsonl"
done
start=$(date +%s)
timeout 100 sweeper run search_spaces/anchor-digits.yaml epochs=1 resources.gpu=1 resources.cpu=1 --out "$sweep" --quiet
status=$?  # 124: stopped at the time limit, so the wall time below is the limit's, not the sweep's
echo "sweep wall: $(( $(date +%s) - start )) s, exit status $status" | tee "$out/sweep.txt"
[ "$status" -eq 0 ] && sweeper report "$sweep" > "$out/sweep-table.md"
timeout 200 sweeper bench --spec search_spaces/jurasinski-table1.yaml --device cuda --bf16 --compile | tee "$out/projection.jsonl"
echo "written under $out"
