#!/usr/bin/env bash
# compare_input.sh SCENARIO CODEC FRAMES
#
# The real-job comparison on one raw file of camera frames: makes FRAMES
# frames of the scenario with `zwrite synth --fill camera` in $TMPDIR, then
# writes that same file three ways, back to back, each into a fresh store
# in $TMPDIR:
#   1. time zwrite append FILE -o DIR      (what users run, start-up included)
#   2. zwrite bench --input FILE -o DIR    (the same path, per-stage and
#                                           per-core figures, and the read and
#                                           write ceilings of this machine)
#   3. tensorstore_bench.py --input FILE --kvstore file:DIR
#                                          (the peer: whole shard rows from a
#                                           memory map of the file)
# The file is read as the OS has it cached: put TMPDIR on tmpfs (/dev/shm on
# the GPU machine) so that all three read from memory and only the writers
# are compared.
#
# Environment: ZWRITE (binary, default zwrite), PYTHON (python3), OUT_DIR
# (JSON records, default .), BACKEND (auto), DTYPE (uint16), TMPDIR.
set -euo pipefail
if [ $# -ne 3 ]; then
	echo "usage: $0 SCENARIO CODEC FRAMES" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
scen=$1 codec=$2 frames=$3
ZWRITE=${ZWRITE:-zwrite} PYTHON=${PYTHON:-python3} OUT_DIR=${OUT_DIR:-.}
BACKEND=${BACKEND:-auto} DTYPE=${DTYPE:-uint16}
mkdir -p "$OUT_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

read -r -a geo < <("$PYTHON" "$here/scenarios.py" "$scen" flags)
read -r epoch_shape _ < <("$PYTHON" "$here/scenarios.py" "$scen")
frame_shape=${epoch_shape#*,}
raw=$tmp/frames.raw
"$ZWRITE" synth --shape "$frames,$frame_shape" --dtype "$DTYPE" --fill camera >"$raw"
echo "compare_input: $raw, $(du -h "$raw" | cut -f1), $scen $codec on $BACKEND" >&2

/usr/bin/time -f "zwrite append: %e s wall, %U s user, %S s sys, %M KiB max RSS" \
	"$ZWRITE" append "$raw" -o "$tmp/append.zarr" "${geo[@]}" --dtype "$DTYPE" \
	--codec "$codec" --backend "$BACKEND"
rm -rf "$tmp/append.zarr"

"$ZWRITE" bench --input "$raw" -o "$tmp/bench.zarr" --scenario "$scen" --dtype "$DTYPE" \
	--codec "$codec" --backend "$BACKEND" --progress=false \
	--json "$OUT_DIR/zwrite-input-$BACKEND-$scen-$codec.json"
rm -rf "$tmp/bench.zarr"

"$PYTHON" "$here/tensorstore_bench.py" --scenario "$scen" --codec "$codec" --dtype "$DTYPE" \
	--input "$raw" --kvstore "file:$tmp/ts" --json "$OUT_DIR/tensorstore-input-$scen-$codec.json"

"$PYTHON" - "$OUT_DIR/zwrite-input-$BACKEND-$scen-$codec.json" "$OUT_DIR/tensorstore-input-$scen-$codec.json" <<'PY'
import json, sys
z, t = (json.load(open(p)) for p in sys.argv[1:3])
zr, tr, bl = z["result"], t["result"], z["baselines"]
rd, wr = bl.get("read_ceiling") or {}, bl.get("write_ceiling") or {}
print(f"{z['scenario']['name']} {z['scenario']['codec']} from {z['config']['input']}: "
      f"zwrite {zr['input_gbps']:.3f} GB/s (ratio {zr['ratio']:.3f}; read ceiling "
      f"{rd.get('best_gbps', 0):.2f}, write ceiling {wr.get('best_gbps', 0):.2f} GB/s)  "
      f"tensorstore {tr['input_gbps']:.3f} GB/s (ratio {tr['ratio']:.3f})  "
      f"zwrite/tensorstore {zr['input_gbps'] / max(tr['input_gbps'], 1e-9):.2f}x")
PY
