#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build the extension with its CUDA kernels, run the test
# suite (CUDA cases included), compute-sanitizer memcheck and racecheck on small cases, and
# `lth-fast bench --device cuda` at 10M, 100M and 1B parameters. Writes
# benchmarks/results/<gpu>.md (and .json) with device, torch version, commit and date; with
# OUT set (e.g. the device tool's $OUT) a copy and the logs go there too.
# STEPS (default "build tests sanitizer bench") runs a subset; the build is incremental.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-/tmp/lth_fast_gpu_check}
mkdir -p "$OUT" benchmarks/results
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export PYTHONUNBUFFERED=1
status=0
STEPS=${STEPS:-build tests sanitizer bench}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
step() { echo "== $* ($(date -u +%T))"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }

step build
$PY -m pip install -q --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
gpu=$($PY -c "import torch;print(torch.cuda.get_device_name().replace(' ', '-'))")
echo "device $gpu, torch $($PY -c 'import torch;print(torch.__version__)')"

if want tests; then
  step tests
  # Workers keep a crashed CUDA context from failing the tests after it.
  OMP_NUM_THREADS=2 timeout ${TEST_TIMEOUT:-360} $PY -m pytest tests -q -m "not slow" -p no:cacheprovider \
    -n ${TEST_WORKERS:-$(( $(nproc) * 3 / 4 ))} -rfE 2>&1 | tee "$OUT/tests.log" | grep -v "^[.sx]*  *\[" | tail -40
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

SMALL='
import torch, lth_fast
g = torch.Generator(device="cuda").manual_seed(0)
ws = [torch.randn(n, device="cuda", generator=g) for n in (70000, 5, 131073)]
ms = [torch.rand(w.shape, device="cuda", generator=g) > 0.2 for w in ws]
lth_fast.prune_(ws, ms, 0.3); lth_fast.prune_(ws, ms, [0.1, 0.0, 0.5], scope="layer")
lth_fast.prune_([w.half() for w in ws], ms, 0.2)
bufs = [torch.zeros_like(w) for w in ws]
lth_fast.masked_sgd_(ws, [torch.randn_like(w) for w in ws], ms, bufs, lr=0.1, momentum=0.9, init_buffers=True)
lth_fast.rewind_(ws, [w.clone() for w in ws], ms)
lth_fast.masked_adam_(ws, [torch.randn_like(w) for w in ws], ms, [torch.zeros_like(w) for w in ws],
                      [torch.zeros_like(w) for w in ws], step=1, lr=1e-3, weight_decay=0.01)
lth_fast.masked_adam_(ws, [torch.randn_like(w) for w in ws], ms, [torch.zeros_like(w) for w in ws],
                      [torch.zeros_like(w) for w in ws], step=2, lr=1e-3, weight_decay=0.01,
                      max_exp_avg_sqs=[torch.zeros_like(w) for w in ws], decoupled_weight_decay=True)
torch.cuda.synchronize()
'
for tool in memcheck racecheck; do
  want sanitizer || break
  step "compute-sanitizer $tool"
  if command -v compute-sanitizer >/dev/null || [ -x "$CUDA_HOME/bin/compute-sanitizer" ]; then
    CS=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
    "$CS" --tool "$tool" --error-exitcode 1 $PY -c "$SMALL" > "$OUT/sanitizer-$tool.log" 2>&1 \
      && echo "$tool: clean" || { echo "$tool: ERRORS (see sanitizer-$tool.log)"; status=1; }
    tail -3 "$OUT/sanitizer-$tool.log"
  else
    echo "compute-sanitizer not found"; status=1
  fi
done

want bench || exit $status
step bench
$PY -m lth_fast bench --device cuda --sizes 10M,100M --ops prune,masked_sgd,rewind,masked_adam,masked_adamw \
  --workloads resnet,transformer --no-memory -q --json "$OUT/bench.json" > "$OUT/bench.md" || status=1
$PY -m lth_fast bench --device cuda --sizes 1B --ops prune,masked_sgd,rewind,masked_adam \
  --workloads transformer --no-baselines --no-memory -q --json "$OUT/bench-1B.json" \
  > "$OUT/bench-1B.md" || status=1
{
  echo "# lth_fast on $gpu"
  echo
  echo "$(date -u +%F) · torch $($PY -c 'import torch;print(torch.__version__)') · commit $(git rev-parse --short HEAD 2>/dev/null)"
  echo
  cat "$OUT/bench.md"; echo; cat "$OUT/bench-1B.md"
} > "benchmarks/results/$gpu.md"
cp "$OUT/bench.json" "benchmarks/results/$gpu.json"
cp "$OUT/bench-1B.json" "benchmarks/results/$gpu-1B.json"
cp "benchmarks/results/$gpu.md" "$OUT/"
cat "benchmarks/results/$gpu.md"
exit $status
