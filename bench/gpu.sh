#!/usr/bin/env bash
# The GPU checks in one go: the engine's proofs (tests/engine) on the GPU, then the engine
# benchmark there, zoo models at the paper's sizes included. Needs a CUDA GPU and stlens
# importable (pip install -e . or PYTHONPATH=backend). Writes to ${OUT:-bench-gpu}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench-gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
STLENS_TEST_DEVICE=cuda python3 -m pytest tests/engine -q -rs --noconftest -p no:cacheprovider 2>&1 | tee "$out/tests.txt"
python3 bench/engine_bench.py --device cuda --steps "${STEPS:-32}" --repeats "${REPEATS:-3}" \
    --zoo ${ZOO_MODELS:-vgg16-twostream i3d-kinetics400-full st-resnet50} 2>&1 | tee "$out/engine_bench.md"
