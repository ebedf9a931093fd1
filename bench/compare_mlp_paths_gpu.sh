#!/usr/bin/env bash
# On the GPU machine, in one command: trains the same clips side by side on the default fp32 MLP
# path and on the fp16 half path (DYNTET_MLP_PATH=half), scores both on the held-out frames and
# prints one table (steps, skipped steps, validation PSNR, head-box PSNR over the plate). This is
# the check that decides whether the half path (1.37x faster steps) may become the default.
#   NODE_BIN=/path/node bash bench/compare_mlp_paths_gpu.sh <minutes> <config.json> <packed.tar>...
#   bash bench/compare_mlp_paths_gpu.sh --table <out-dir>    (the table again, from earlier results)
# Results: $OUT/tiled/ and $OUT/half/ as bench/run_train_gpu.sh writes them.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=${OUT:-$ROOT/bench-out/mlp-paths}

table() {
  python3 - "$1" <<'PY'
import json, os, re, sys
out = sys.argv[1]
rows = []
for path in ("tiled", "half"):
    d = os.path.join(out, path)
    if not os.path.isdir(d):
        continue
    for f in sorted(os.listdir(d)):
        if not f.endswith("-fit.txt"):
            continue
        clip = f[: -len("-fit.txt")]
        fit = {}
        for line in open(os.path.join(d, f)):
            if line.startswith("{"):
                fit = json.loads(line)
        head = "-"
        ev = os.path.join(d, clip + "-eval.txt")
        if os.path.exists(ev):
            for line in open(ev):
                if line.startswith("ours (over plate)"):
                    head = line.split()[5]  # method (3 words), full PSNR, full SSIM, head PSNR
        rows.append((clip, path, fit.get("steps", "-"), fit.get("skippedSteps", "-"),
                     "%.2f" % fit["valPsnr"] if "valPsnr" in fit else "-", head))
if not rows:
    sys.exit("no results under %s" % out)
print("| clip | MLP path | steps | skipped steps | valPsnr (dB) | head PSNR over plate (dB) |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for r in sorted(rows):
    print("| %s | %s | %s | %s | %s | %s |" % r)
PY
}

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 0
fi
if [ "${1:-}" = "--table" ]; then
  table "${2:?results directory}"
  exit $?
fi
MINUTES=${1:?minutes of training}
CONFIG=${2:?fit config json}
shift 2
[ $# -gt 0 ] || { echo "give at least one packed dataset (bench/pack_dataset.sh)"; exit 2; }
mkdir -p "$OUT"
# Build once, so the two runners do not race on the same build directory.
cmake -S "$ROOT/native/trainer" -B "$ROOT/native/build/trainer-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYNTET_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="90-real" > "$OUT/build.log" 2>&1 &&
  PATH="$(dirname "${NODE_BIN:-$(command -v node)}"):$PATH" ninja -C "$ROOT/native/build/trainer-cuda" dyntet_addon >> "$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 3; }
EVAL=1 NO_ASSET=1 OUT="$OUT/tiled" WORK=/tmp/dyntet-mlp-tiled bash "$ROOT/bench/run_train_gpu.sh" "$MINUTES" "$CONFIG" "$@" > "$OUT/tiled.log" 2>&1 &
DYNTET_MLP_PATH=half EVAL=1 NO_ASSET=1 OUT="$OUT/half" WORK=/tmp/dyntet-mlp-half bash "$ROOT/bench/run_train_gpu.sh" "$MINUTES" "$CONFIG" "$@" > "$OUT/half.log" 2>&1 &
wait
table "$OUT"
