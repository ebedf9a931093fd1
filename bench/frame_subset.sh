#!/usr/bin/env bash
# A prepared dataset that trains on chosen frames only: links every file of <dataset> into <out>
# and rewrites dataset.json's split (train = the given frames, val = the first of them unless
# --val is given). For fit-capacity experiments, e.g. one frame: how sharp can the model be when
# nothing has to be shared between expressions?
#   bash bench/frame_subset.sh <dataset> <out> <frame,frame,...> [--val <frame,...>]
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] || [ $# -lt 3 ]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 3 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] && exit 0 || exit 2
fi
src=$(cd "$1" && pwd); out=$2; train=$3; val=${train%%,*}
[ "${4:-}" = "--val" ] && val=${5:?--val needs frames}
[ -f "$src/dataset.json" ] || { echo "$src is not a prepared dataset (no dataset.json): run dyntet-train prepare first" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out"
for f in "$src"/*; do [ "$(basename "$f")" = dataset.json ] || ln -s "$f" "$out/"; done
python3 - "$src/dataset.json" "$out/dataset.json" "$train" "$val" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = len(d['split']['train']) + len(d['split']['val'])
frames = lambda s: [int(x) for x in s.split(',')]
for k, v in (('train', frames(sys.argv[3])), ('val', frames(sys.argv[4]))):
    bad = [x for x in v if not 0 <= x < n]
    if bad: sys.exit('frames %s are outside the dataset (0..%d)' % (bad, n - 1))
    d['split'][k] = v
json.dump(d, open(sys.argv[2], 'w'))
print('%s: train %s, val %s' % (sys.argv[2], d['split']['train'], d['split']['val']))
PY
