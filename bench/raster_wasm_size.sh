#!/usr/bin/env bash
# Builds the reference renderer (render_ref + its C API + marching tets + asset reader) alone
# with emscripten and prints its size, to decide whether it can live in the player core bundle.
# Usage: bash bench/raster_wasm_size.sh   (needs emcc >= 3.1 on PATH)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"
C="$ROOT/native/core"
EXPORTS='["_malloc","_free","_dt_ref_open","_dt_ref_error","_dt_ref_width","_dt_ref_height","_dt_ref_window","_dt_ref_active","_dt_ref_render","_dt_ref_close"]'
emcc -O3 -std=c++17 -ffp-contract=off -fno-exceptions -sMODULARIZE=1 -sEXPORT_ES6=1 -sALLOW_MEMORY_GROWTH=1 \
  -sEXPORTED_FUNCTIONS="$EXPORTS" -sENVIRONMENT=web,worker \
  "$C/render_ref.cpp" "$C/render_ref_capi.cpp" "$C/marching_tets.cpp" "$C/asset.cpp" "$C/json.cpp" \
  -o "$TMP/reference.mjs"
printf '| file | bytes | gzip -9 bytes |\n|---|---:|---:|\n'
for f in reference.wasm reference.mjs; do
  printf '| %s | %d | %d |\n' "$f" "$(stat -c %s "$TMP/$f")" "$(gzip -9 -c "$TMP/$f" | wc -c)"
done
