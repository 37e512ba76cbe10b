#!/usr/bin/env bash
# compare.sh SCENARIO CODEC[,CODEC...] [FRAMES]
#
# Runs `zwrite bench` (CPU backend unless BACKEND is set, --prefill, discard
# sink) and then tensorstore_bench.py on the same scenario, fill and frames,
# back to back on this machine, and prints the ratio of their input rates.
# Both write the same bytes: the tensorstore side reads the first epoch from
# `zwrite synth`, and both cycle that epoch.
#
# FRAMES defaults to one shard row (tensorstore writes whole shard rows).
# Environment: ZWRITE (binary, default zwrite), PYTHON (python3), OUT_DIR
# (where the JSON records go, default .), FILL (thirds), DTYPE (uint16),
# LEVEL (codec default), BACKEND (cpu), DEPTH (pipeline default),
# TMPDIR (the epoch file; a fast local disk).
set -euo pipefail
if [ $# -lt 2 ]; then
	echo "usage: $0 SCENARIO CODEC[,CODEC...] [FRAMES]" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
scen=$1 codecs=$2 frames=${3:-}
ZWRITE=${ZWRITE:-zwrite} PYTHON=${PYTHON:-python3} OUT_DIR=${OUT_DIR:-.}
FILL=${FILL:-thirds} DTYPE=${DTYPE:-uint16} BACKEND=${BACKEND:-cpu}
mkdir -p "$OUT_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Geometry from the peer scripts' scenario table (the same as zwrite's).
read -r epoch_shape shard0 < <("$PYTHON" "$here/scenarios.py" "$scen")
frames=${frames:-$shard0}
if [ $((frames % shard0)) -ne 0 ]; then
	frames=$(((frames + shard0 - 1) / shard0 * shard0))
	echo "compare: frames rounded up to $frames (whole shard rows of $shard0)" >&2
fi

"$ZWRITE" synth --shape "$epoch_shape" --dtype "$DTYPE" --fill "$FILL" >"$tmp/epoch.raw"

level_flag=() depth_flag=()
[ -n "${LEVEL:-}" ] && level_flag=(--level "$LEVEL")
[ -n "${DEPTH:-}" ] && depth_flag=(--depth "$DEPTH")
IFS=, read -ra list <<<"$codecs"
for c in "${list[@]}"; do
	"$ZWRITE" bench --scenario "$scen" --codec "$c" --dtype "$DTYPE" --fill "$FILL" \
		--backend "$BACKEND" --prefill --frames "$frames" "${level_flag[@]}" "${depth_flag[@]}" \
		--json "$OUT_DIR/zwrite-$BACKEND-$scen-$c.json"
done
"$PYTHON" "$here/tensorstore_bench.py" --scenario "$scen" --codec "$codecs" --dtype "$DTYPE" \
	--fill "$FILL" --frames "$frames" --raw "$tmp/epoch.raw" "${level_flag[@]}" --json-dir "$OUT_DIR"

"$PYTHON" - "$OUT_DIR" "$scen" "$BACKEND" "${list[@]}" <<'PY'
import json, os, sys
out, scen, backend, codecs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for c in codecs:
    z = json.load(open(os.path.join(out, f"zwrite-{backend}-{scen}-{c}.json")))
    t = json.load(open(os.path.join(out, f"tensorstore-{scen}-{c}.json")))
    zr, tr = z["result"], t["result"]
    print(f"{scen} {c}: zwrite {backend} {zr['input_gbps']:.3f} GB/s (ratio {zr['ratio']:.3f}, "
          f"ceiling {z['baselines'].get('codec_ceiling_gbps', 0):.3f} GB/s)  "
          f"tensorstore {tr['input_gbps']:.3f} GB/s (ratio {tr['ratio']:.3f})  "
          f"zwrite/tensorstore {zr['input_gbps'] / max(tr['input_gbps'], 1e-9):.2f}x")
PY
