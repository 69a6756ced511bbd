#!/usr/bin/env bash
# What metbench runs on a lent GPU machine (issue 17, item 6), in one call each:
#
#   benchmarks/gpu/run.sh train       GPU training speed: a dataset generated there (mini settings,
#                                     --events-per-process 5000, seed 7), then 3 epochs each of the
#                                     Perceiver (mean head), its summation variant and DeepMET
#                                     (resolution; Keras 3 on PyTorch), on cuda
#   benchmarks/gpu/run.sh throughput  GPU rows in the committed standard results: `metbench run
#                                     --throughput-only --device cuda` for the entries below
#
# The GPU machine has PyTorch, numpy, pyarrow, pandas, scipy, onnx and onnxruntime, but not
# metbench's other needs: they travel as wheels in .whl/ (benchmarks/gpu/README.md says which),
# and pythia8mc's wheel in .whl-gen/ for `train`. Nothing there can be downloaded. The standard
# dataset does not travel (tens of GB): `throughput` needs only its manifest (.dev/standard/) and
# the input extract of the 1024-event sample that the throughput measurement reads, made here by
# benchmarks/gpu/prepare.py. What comes back goes to $OUT (default gpu-out/).
set -uo pipefail
mode=${1:?train or throughput}
OUT=${OUT:-gpu-out}
PY=${PY:-python3}            # a local dry run: PY=<venv python> DEVICE=cpu EVENTS=40 NO_WHEELS=1
DEVICE=${DEVICE:-cuda}
EVENTS=${EVENTS:-5000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
[ -n "${NO_WHEELS:-}" ] || $PY -m pip install -q --no-index --no-deps --no-compile \
    --disable-pip-version-check .whl/*.whl ${GEN_WHEELS:-} 2>&1 | tail -3
mb() { $PY -m metbench.cli "$@"; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; $PY -V;
  KERAS_BACKEND=torch $PY -c "import torch, keras; print('torch', torch.__version__, 'keras', keras.__version__)"; } \
    > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

case $mode in
train)
    t0=$(date +%s)
    mb data generate --preset mini --events-per-process "$EVENTS" --seed 7 --workers "$(nproc)" \
        --out /tmp/gpu-data > "$OUT/generate.log" 2>&1
    rc=$?; echo "generation: rc $rc, $(( $(date +%s) - t0 )) s"; tail -2 "$OUT/generate.log"
    cp /tmp/gpu-data/manifest.json "$OUT/gpu-data-manifest.json"
    train() {  # submission variant batch-size [env]
        local name=$1 variant=$2 bs=$3
        local t=$(date +%s)
        env ${4:-} $PY -m metbench.cli train "submissions/$name" --variant "$variant" \
            --dataset /tmp/gpu-data --device "$DEVICE" --epochs 3 --patience 10 --batch-size "$bs" \
            --out "/tmp/trainings/$name-$variant" --trust > "$OUT/train-$name-$variant.log" 2>&1
        local rc=$?
        echo "$name $variant: rc $rc, $(( $(date +%s) - t )) s"
        grep -E "^(train|val): |^epoch [0-9]+: train" "$OUT/train-$name-$variant.log"
    }
    train perceiver-torch torch 128
    train perceiver-sum-torch torch 128
    train deepmet-keras resolution 64 KERAS_BACKEND=torch
    tar -C /tmp -czf "$OUT/trainings.tar.gz" --exclude '*.pt' --exclude '*.onnx' \
        --exclude '*.h5' --exclude '*.npz' trainings
    ;;
throughput)
    results=leaderboard/results
    changed=()
    for spec in "perceiver-torch torch" "deepmet-keras resolution" "deepmet-keras response"; do
        set -- $spec
        env KERAS_BACKEND=torch $PY -m metbench.cli run "submissions/$1" --variant "$2" \
            --dataset .dev/standard --results "$results" --device "$DEVICE" --throughput-only \
            --no-sandbox > "$OUT/throughput-$1-$2.log" 2>&1
        echo "$1 $2: rc $?"; tail -3 "$OUT/throughput-$1-$2.log"
        changed+=("$results/standard-d416f4eed1eb/test/$1-$2.json")
    done
    tar -czf "$OUT/results.tar.gz" "${changed[@]}"
    ;;
esac
