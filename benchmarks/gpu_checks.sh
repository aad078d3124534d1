#!/usr/bin/env bash
# The checks that need a GPU, as one call of a lent machine (docs/performance.md and
# docs/accuracy.md say which are still open). Its image has torch, Triton, pandas, pyarrow,
# safetensors, typer, rich and pytest; the repository's src/ goes on PYTHONPATH. Here, first:
#
#     mkdir -p .gpu-data && cp ../shared/data/ETTh1.csv ../shared/data/ETTm1.csv .gpu-data/
#
# then, with the device tool: run(command="bash benchmarks/gpu_checks.sh",
# carry=[".gpu-data"], timeout_s=600). Every step runs even if one before it failed; results
# go to $OUT (the folder that comes back), else runs/gpu-checks. About 8-10 minutes on an H100
# (estimated from one seglstm run's 1.6 s there; not yet run whole).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu-checks}
data=${1:-.gpu-data}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
step() { echo "== $(date -u +%H:%M:%S) $*"; }

step machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/machine.txt"
$python -c "import torch, triton; print(torch.__version__, triton.__version__)" |
    tee -a "$out/machine.txt"

step "the CUDA tests (CPU CI skips them)"
$python -m pytest -q -p no:cacheprovider -rs tests/kernels/test_triton_lstm.py \
    tests/models/test_ensemble.py -k "cuda or triton" 2>&1 | tee "$out/tests.log"

step "the 5-member ensemble against SegRNN's lookback-96 rows (issue 17)"
$python benchmarks/accuracy.py --datasets ETTh1,ETTm1 --models seglstm@ens5 \
    --horizons 96,192,336,720 --lookbacks 96 --seeds 1 --device cuda --data-dir "$data" \
    --cache "$out/accuracy_ens5.jsonl" --checkpoints /tmp/lstmcast-checkpoints \
    --out "$out/accuracy.md"

step "what K = 5 costs against one member on the GPU (issue 17)"
$python benchmarks/ensemble_cost.py --members 1,5 --device cuda --rows 17420 \
    --data "$data/ETTh1.csv" --json "$out/ensemble_cost.jsonl"
for preset in simple stacked bidirectional; do
    $python benchmarks/ensemble_cost.py --model "$preset" --members 1,5 --lookback 10 \
        --horizon 1 --batch 32 --device cuda --rows 17420 --data "$data/ETTh1.csv" \
        --json "$out/ensemble_cost.jsonl"
done
step done
