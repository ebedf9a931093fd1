#!/usr/bin/env bash
# Packs a prepared dataset small enough to travel to the GPU machine (64 MiB limit): frames as
# high-quality JPEG (about 6x smaller than PNG), everything else as is. bench/run_train_gpu.sh
# turns the JPEGs back into the PNG frames `fit` reads (PSNR of the round trip ~45 dB).
#   bash bench/pack_dataset.sh <dataset-dir> <out.tar>
set -euo pipefail
DS=${1:?dataset directory}
OUT_TAR=${2:?output tar}
NAME=$(basename "$DS")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/$NAME/frames" "$TMP/$NAME/masks"
cp "$DS"/dataset.json "$DS"/tracking.json "$DS"/landmarks.f32 "$DS"/canonical.f32 "$DS"/background.png "$TMP/$NAME/"  # landmarks: eval's head boxes
cp -r "$DS/masks/head" "$TMP/$NAME/masks/"
for f in "$DS"/frames/*.png; do
  ffmpeg -loglevel error -y -i "$f" -q:v 1 -qmin 1 "$TMP/$NAME/frames/$(basename "${f%.png}").jpg"
done
tar -C "$TMP" -cf "$OUT_TAR" "$NAME"
du -h "$OUT_TAR"
