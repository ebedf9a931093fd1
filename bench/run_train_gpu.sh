#!/usr/bin/env bash
# On the GPU machine, in one command: build the CUDA trainer and its addon, train on packed
# datasets (bench/pack_dataset.sh) in parallel, export each run, and put what came out under $OUT.
#   NODE_BIN=/path/node [ATTRIBUTION="where the clip came from"] [BUDGETS="3MB 1MB"] bash bench/run_train_gpu.sh <minutes> <config.json>[,<config.json>...] <packed.tar>...
# With several configs (comma-separated) every clip trains with each, in parallel, as <clip>-<config name>.
# Needs: trainer/dist, sdk/dist, wasm/out, node_modules/{node-addon-api,node-api-headers,@dyntet}.
# At most 8 files of 16 MiB come back from the machine, so everything is packed at the end:
# $OUT/summary.tar holds, per run, the fit/export/eval texts, log.jsonl, run.json, export.json,
# eval.json and report.html; $OUT/files-<k>.tar (up to 7, under 15 MiB each, 60 MiB in all) the assets first,
# then the held-out renders (<name>/eval, for a local `dyntet-train eval --rendered`), then the
# validation frames (<name>/val); whatever does not fit is named in summary.tar's left-behind.txt.
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
rm -rf "$WORK/pack"
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
    mkdir -p "$WORK/pack/summary/$name" "$WORK/pack/big/$name"
    cp "$run/log.jsonl" "$run/run.json" "$run/export.json" "$run/evalout/eval.json" "$WORK/pack/summary/$name/" 2>/dev/null
    cp "$run/report/index.html" "$WORK/pack/summary/$name/report.html" 2>/dev/null
    [ "${NO_ASSET:-0}" = 1 ] || cp "$run/$name.dyntet" "$WORK/pack/big/$name/" 2>/dev/null
    [ -d "$run/eval" ] && cp -r "$run/eval" "$WORK/pack/big/$name/"
    mkdir -p "$WORK/pack/big/$name/val" && cp "$run"/val/*.png "$WORK/pack/big/$name/val/" 2>/dev/null
  ) &
  pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p"; done
mkdir -p "$WORK/pack/summary" "$WORK/pack/big"
mv "$OUT"/*.txt "$OUT"/*.jsonl "$OUT/build.log" "$WORK/pack/summary/" 2>/dev/null
python3 - "$WORK/pack" "$OUT" <<'PY'
import os, sys, tarfile
pack, out = sys.argv[1], sys.argv[2]
def size(p):
    return os.path.getsize(p) if os.path.isfile(p) else sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs)
big = os.path.join(pack, 'big')
items = []  # (priority, path inside big/): assets, then eval renders, then validation frames
for name in sorted(os.listdir(big)):
    for e in sorted(os.listdir(os.path.join(big, name))):
        rank = 0 if e.endswith('.dyntet') else 1 if e == 'eval' else 2
        items.append((rank, os.path.join(name, e)))
limit, total, bins, left = 15 << 20, 60 << 20, [], []  # per file; all files together
for _, rel in sorted(items):
    s = size(os.path.join(big, rel))
    if sum(b[0] for b in bins) + s > total: left.append(rel); continue
    b = next((b for b in bins if b[0] + s <= limit), None)
    if b is None and len(bins) < 7 and s <= limit: b = [0, []]; bins.append(b)
    if b is None: left.append(rel); continue
    b[0] += s; b[1].append(rel)
with open(os.path.join(pack, 'summary', 'left-behind.txt'), 'w') as f: f.write(''.join(r + '\n' for r in left))
with tarfile.open(os.path.join(out, 'summary.tar'), 'w') as t: t.add(os.path.join(pack, 'summary'), 'summary')
for k, (_, rels) in enumerate(bins):
    with tarfile.open(os.path.join(out, 'files-%d.tar' % k), 'w') as t:
        for rel in rels: t.add(os.path.join(big, rel), rel)
print('packed: summary.tar + %d file tars; left behind: %s' % (len(bins), ', '.join(left) or 'nothing'))
PY
for name in "${run_names[@]}"; do
  S="$WORK/pack/summary"
  echo "== $name"; tail -3 "$S/$name-fit.txt"; tail -8 "$S/$name-export.txt"
  [ -f "$S/$name-eval.txt" ] && grep -E "^(method|ours|nearest)" "$S/$name-eval.txt"
done
echo "total: $(( $(date +%s) - t0 )) s"
