#!/usr/bin/env bash
# On the GPU machine, in one command: build the CUDA trainer and its addon, train on packed
# datasets (bench/pack_dataset.sh) in parallel, export each run, and put what came out under $OUT.
#   NODE_BIN=/path/node [ATTRIBUTION="where the clip came from"] [BUDGETS="3MB 1MB"] bash bench/run_train_gpu.sh <minutes> <config.json>[,<config.json>...] <packed.tar>...
# With several configs (comma-separated) every clip trains with each, in parallel, as <clip>-<config name>.
# Needs: trainer/dist, sdk/dist, wasm/out, node_modules/{node-addon-api,node-api-headers,@dyntet}.
# Per run, $OUT/<name>.tar holds log.jsonl, run.json, export.json, the asset, report.html and
# val/ (held-out frames beside the real ones); $OUT/<name>-eval.tar the held-out renders for eval.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MINUTES=${1:?minutes of training}
CONFIGS=${2:?fit config json}
shift 2
NODE=${NODE_BIN:-node}
OUT=${OUT:-$ROOT/bench-out}
WORK=${WORK:-/tmp/dyntet-train}
mkdir -p "$OUT" "$WORK" /tmp/nodebin
ln -sf "$NODE" /tmp/nodebin/node
export PATH=/tmp/nodebin:$PATH
BUILD=native/build/trainer-cuda
t0=$(date +%s)
cmake -S native/trainer -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYNTET_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="90-real" > "$OUT/build.log" 2>&1 &&
  ninja -C "$BUILD" -j"$(nproc)" dyntet_addon >> "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 3; }
echo "build: $(( $(date +%s) - t0 )) s"
export DYNTET_ADDON=$ROOT/$BUILD/dyntet_addon.node
node -e "console.log(JSON.stringify(require(process.env.DYNTET_ADDON).backends()))"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
IFS=, read -r -a CONFIG_LIST <<< "$CONFIGS"
run_names=()
pids=()
for tarball in "$@"; do
  clip=$(tar -tf "$tarball" | head -1 | cut -d/ -f1)
  tar -C "$WORK" -xf "$tarball"
  python3 - "$WORK/$clip/frames" <<'PY'
import sys, os
from PIL import Image
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    if f.endswith('.jpg'):
        Image.open(os.path.join(d, f)).convert('RGB').save(os.path.join(d, f[:-4] + '.png'), compress_level=1)
        os.remove(os.path.join(d, f))
PY
  for CONFIG in "${CONFIG_LIST[@]}"; do
  name=$clip
  [ ${#CONFIG_LIST[@]} -gt 1 ] && name=$clip-$(basename "$CONFIG" .json)
  run_names+=("$name")
  (
    run="$WORK/run-$name"
    node trainer/bin/dyntet-train.mjs fit "$WORK/$clip" --out "$run" --device cuda --config "$CONFIG" \
      --time-limit "$MINUTES" --quiet > "$OUT/$name-fit.txt" 2>&1
    # Size-vs-quality curve: the same run exported at smaller budgets (BUDGETS="3MB 2MB 1MB").
    for b in ${BUDGETS:-}; do
      node trainer/bin/dyntet-train.mjs export "$run" --out "$run/$name-$b.dyntet" --budget "$b" --device cuda --check 4 --min-psnr 0 --json \
        | tail -1 | sed "s/^{/{\"budget\":\"$b\",/" >> "$OUT/$name-curve.jsonl" 2>&1
    done
    node trainer/bin/dyntet-train.mjs export "$run" --out "$run/$name.dyntet" --device cuda --check 4 ${ATTRIBUTION:+--attribution "$ATTRIBUTION"} > "$OUT/$name-export.txt" 2>&1  # last: export.json is its
    # EVAL=1: score the held-out renders here (PSNR/SSIM, both compositing modes; LMD needs the
    # browser tracker, so it stays with a local `dyntet-train eval`).
    [ "${EVAL:-0}" = 1 ] && node trainer/bin/dyntet-train.mjs eval "$WORK/$clip" --rendered "$run/eval" --out "$run/evalout" \
      --no-lmd --no-video > "$OUT/$name-eval.txt" 2>&1
    # Two tars (16 MiB each at most come back): the held-out renders, and the rest (meshes stay:
    # several MB of OBJ each).
    mkdir -p "$WORK/pack-$name/val" "$WORK/eval-$name"
    cp -r "$run/log.jsonl" "$run/run.json" "$run/export.json" "$run/evalout/eval.json" "$WORK/pack-$name/" 2>/dev/null
    [ "${NO_ASSET:-0}" = 1 ] || cp "$run/$name.dyntet" "$WORK/pack-$name/"
    cp "$run/report/index.html" "$WORK/pack-$name/report.html" 2>/dev/null
    cp "$run"/val/*.png "$WORK/pack-$name/val/" 2>/dev/null
    cp -r "$run/eval" "$WORK/eval-$name/" 2>/dev/null
    tar -C "$WORK" -cf "$OUT/$name.tar" "pack-$name"
    tar -C "$WORK" -cf "$OUT/$name-eval.tar" "eval-$name"
  ) &
  pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p"; done
for name in "${run_names[@]}"; do
  echo "== $name"; tail -3 "$OUT/$name-fit.txt"; tail -8 "$OUT/$name-export.txt"
  [ -f "$OUT/$name-eval.txt" ] && grep -E "^(method|ours|nearest)" "$OUT/$name-eval.txt"
done
echo "total: $(( $(date +%s) - t0 )) s"
