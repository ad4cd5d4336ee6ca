#!/usr/bin/env bash
# The book's GPU check: the same package code on a GPU, under the JAX and PyTorch backends.
#
#   RECSYS_BOOK_DATA=<data folder> OUT=<results folder> bash benchmarks/gpu_check.sh [minutes]
#
# 1. a smoke test (a tiny SASRec fit on the JAX backend; stops here if it fails);
# 2. the sequence-model and loss tests on the GPU, under JAX and under PyTorch;
# 3. three Amazon Beauty runs of benchmarks/bench_sequential.py on the JAX backend, each
#    with a time budget of [minutes] (default 5): SASRec (full softmax) in float32,
#    the same in mixed bfloat16, and BERT4Rec. They run at the same time on the one GPU,
#    so their times are those of a shared device (an upper bound on each alone).
# Logs and a results table land in $OUT. Needs Keras 3, JAX with CUDA and PyTorch with CUDA.
set -u
OUT=${OUT:-benchmarks/results/gpu}
MINUTES=${1:-5}
mkdir -p "$OUT"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import jax, keras, torch; print('jax', jax.__version__, '| keras', keras.__version__, '| torch', torch.__version__)"
    python3 - <<'EOF'
from recsys_book.runtime import setup

info = setup(seed=0)
assert info.has_gpu, f"no GPU visible to the JAX backend: {info.devices}"
from recsys_book.data import make_synthetic
from recsys_book.models.sasrec import SASRec
from recsys_book.preprocessing import encode_ids, leave_one_out_split

split = leave_one_out_split(encode_ids(make_synthetic(n_users=100, n_items=50, n_interactions=1500))[0])
model = SASRec(epochs=2, max_len=10, embedding_dim=16).fit(split.train, split.n_users, split.n_items)
print("smoke test passed: SASRec on", info.devices, "loss", model.history_[-1]["loss"])
EOF
} > "$OUT/smoke.log" 2>&1 || { cat "$OUT/smoke.log"; exit 1; }
cat "$OUT/smoke.log"

TESTS="tests/test_losses.py tests/test_models_sequential.py tests/test_two_tower.py"
timeout 300 python3 -m pytest -q -p no:cacheprovider $TESTS > "$OUT/tests_jax_gpu.log" 2>&1 &
KERAS_BACKEND=torch timeout 300 python3 -m pytest -q -p no:cacheprovider $TESTS \
    > "$OUT/tests_torch_gpu.log" 2>&1 &

BENCH="python3 benchmarks/bench_sequential.py --dataset beauty --loss softmax --epochs 400 --jit
    --patience 10 --max-minutes $MINUTES --results $OUT/sequential_gpu.md"
$BENCH --model sasrec --dropout 0.3 --scale-embeddings > "$OUT/sasrec_float32.log" 2>&1 &
$BENCH --model sasrec --dropout 0.3 --scale-embeddings --mixed-precision bfloat16 > "$OUT/sasrec_bfloat16.log" 2>&1 &
# BERT4Rec: the recipe that passed its published row on the CPU (sampled there), full softmax here
$BENCH --model bert4rec --heads 2 --dropout 0.3 --mask-prob 0.4 --scale-embeddings --position-weighted \
    > "$OUT/bert4rec_float32.log" 2>&1 &
wait
tail -n 3 "$OUT"/*.log
