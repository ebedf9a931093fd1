#!/usr/bin/env bash
# The WebGPU player's speed on the GPU machine, in one command: npm `webgpu` (Dawn) on the real GPU
# through Vulkan, in a carried Node. The machine has no Node: pass the carried binaries by path.
#   NODE_BIN=path/to/node DAWN_NODE=path/to/dawn.node bash bench/run_player_gpu.sh
# Runs every scene (synthetic R = 24 .. 128, and demos/avatars/may_5s.dyntet) and ends with one
# summary table of per-stage GPU times (also in $OUT/player_summary.md).
# Needs sdk/dist (npm run build:sdk, here) in the carried tree, and a Vulkan loader: when
# `ldconfig -p` lists no libvulkan, unpack carried .gl/*.deb first (see the device notes).
# Results go to $OUT when set.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="${OUT:-$ROOT/build/player-gpu}"
mkdir -p "$RESULTS"
: "${NODE_BIN:?set NODE_BIN to the carried node binary}"
: "${DAWN_NODE:?set DAWN_NODE to the carried linux-x64 dawn.node}"
if [ ! -f "$ROOT/sdk/dist/index.js" ]; then echo "sdk/dist/index.js missing: run npm run build:sdk before carrying"; exit 1; fi
if [ -d "$ROOT/.gl" ] && ! ldconfig -p | grep -q libvulkan; then
  for f in "$ROOT"/.gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export DAWN_NODE
{
  echo "# player GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 || true
  "$NODE_BIN" --version
} | tee "$RESULTS/player_env.txt"
status=0
: > "$RESULTS/player_frame.txt"
# Test-sized scene, quality-sized synthetic scenes at 512x512 (grid 64, 96 and 128, 16-level hash,
# 64-wide MLPs), then the trained may_5s avatar (512x512, R = 64) when the tree has it.
cfgs=("--size 128 --grid 24 --frames 50"
      "--size 512 --grid 64 --levels 16 --log2 15 --width 64 --frames 100"
      "--size 512 --grid 96 --levels 16 --log2 16 --width 64 --frames 100"
      "--size 512 --grid 128 --levels 16 --log2 16 --width 64 --frames 100"
      "--size 512 --grid 128 --levels 16 --log2 16 --width 64 --frames 100 --deform-cache 0")
[ -f "$ROOT/demos/avatars/may_5s.dyntet" ] && cfgs+=("--asset $ROOT/demos/avatars/may_5s.dyntet --frames 100")
for cfg in "${cfgs[@]}"; do
  # shellcheck disable=SC2086
  "$NODE_BIN" "$ROOT/bench/player_frame.mjs" $cfg 2>&1 | tee -a "$RESULTS/player_frame.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  echo | tee -a "$RESULTS/player_frame.txt"
done
# Every scene in one table (medians, ms): wall = submit then wait per frame; back to back = all
# frames submitted, one wait; GPU = first stage start to last stage end (timestamp queries).
{
  echo "| scene | triangles | wall | back to back | GPU | condition | deform | marching | raster | texture | antialias | composite |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  grep '^ROW | ' "$RESULTS/player_frame.txt" | sed 's/^ROW //'
} | tee "$RESULTS/player_summary.md"
exit $status
