#!/usr/bin/env bash
# One prepared GPU check for issue 17 (run by hand on a CUDA machine, within a 10-minute command):
#   bash bench/gpu_check.sh            # from the repository root; writes to $OUT (or ./gpu-check-out)
# 1. environment: GPU, python, torch / transformers / vllm versions;
# 2. the CrossViewer and CoLVA adapters' CUDA code paths against the stand-in upstream packages
#    (the conformance tests with CVBENCH_TEST_DEVICE=cuda);
# 3. a tiny randomly initialised Qwen2-VL through the hf: (transformers) adapter on CUDA, then
#    `vllm serve` + the openai-compatible adapter and the in-process vllm: adapter (when vllm is
#    importable; otherwise the step says so).
# Each step has its own time limit and its outcome goes to $OUT/summary.txt; nothing stops at a failure.
set -u
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
summary="$OUT/summary.txt"
: > "$summary"
step() {  # step NAME SECONDS CMD...
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc in $((SECONDS - start)) s" | tee -a "$summary"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$summary"
}
step env 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -V; \
  $PY -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.cuda.is_available())'; \
  $PY -c 'import transformers; print(\"transformers\", transformers.__version__)'; \
  $PY -c 'import vllm; print(\"vllm\", vllm.__version__)' || echo 'vllm: not importable'"
step native-adapters-cuda 180 env CVBENCH_TEST_DEVICE=cuda "$PY" -m pytest -q -p no:cacheprovider \
  tests/model_adapters/test_crossviewer_conformance.py tests/model_adapters/test_colva_conformance.py
if "$PY" -c 'import vllm' 2>/dev/null; then
  step tiny-qwen2vl-cuda 420 "$PY" bench/vllm_real_engine.py --device cuda --transformers --workdir "$OUT/work"
else
  step tiny-qwen2vl-transformers-cuda 240 "$PY" bench/vllm_real_engine.py --device cuda --transformers \
    --skip-server --skip-in-process --workdir "$OUT/work"
  echo "vllm: not installed on this machine; the vllm serve and vllm: steps were not run" | tee -a "$summary"
fi
rm -rf "$OUT/work/tiny-qwen2vl"  # weights are not wanted back
