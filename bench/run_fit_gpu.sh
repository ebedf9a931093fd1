#!/usr/bin/env bash
# Trains on CUDA within a time budget and writes numbers under $OUT.
# Usage: NODE_BIN=/path/to/node bench/run_fit_gpu.sh <dataset> [max-minutes] [extra fit args...]
# Needs trainer/dist and a CUDA addon (DYNTET_ADDON or native/build-cuda/dyntet_addon.node).
# Each call stops after max-minutes (default 9) with a checkpoint; calling again resumes.
set -euo pipefail
DATASET=${1:?dataset directory}
MINUTES=${2:-9}
shift $(( $# >= 2 ? 2 : 1 ))
NODE=${NODE_BIN:-node}
OUT=${OUT:-bench-out}
RUN=${RUN_DIR:-$OUT/run}
mkdir -p "$OUT" "$RUN"
CFG=${FIT_CONFIG:-}
RESUME=()
[ -f "$RUN/checkpoint.bin" ] && RESUME=(--resume)
START=$(date +%s)
"$NODE" trainer/bin/dyntet-train.mjs fit "$DATASET" --out "$RUN" --device cuda ${CFG:+--config "$CFG"} \
  --max-minutes "$MINUTES" --quiet "${RESUME[@]}" "$@" | tee "$OUT/fit_result.json"
END=$(date +%s)
"$NODE" -e '
const fs = require("fs");
const [out, run, secs] = process.argv.slice(1);
const r = JSON.parse(fs.readFileSync(out + "/fit_result.json", "utf8").trim().split("\n").pop());
const log = fs.readFileSync(run + "/log.jsonl", "utf8").trim().split("\n").map(JSON.parse);
const val = log.filter((l) => l.valPsnr !== undefined).pop();
const steps = log.filter((l) => l.total !== undefined);
const res = { steps: r.steps, finished: !r.stoppedEarly, callSeconds: Number(secs),
  stepsPerSecond: steps.length > 1 ? (steps.at(-1).step - steps[0].step) / (steps.at(-1).seconds - steps[0].seconds) : null,
  valPsnrFullFramePlate: val ? val.valPsnr : null };
fs.writeFileSync(out + "/fit_numbers.json", JSON.stringify(res, null, 2));
console.log("| metric | value |\n| --- | --- |\n" + Object.entries(res).map(([k, v]) => `| ${k} | ${v} |`).join("\n"));
' "$OUT" "$RUN" "$((END - START))" | tee "$OUT/fit_numbers.md"
