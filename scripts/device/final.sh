#!/usr/bin/env bash
# final.sh: the one end-of-session run on the GPU machine (H100, 16 cores,
# Python 3 + numpy + tensorstore, no Go). Prebuilt binaries come in
# .dev/final/ (zwrite, gpu.test); everything lands in $OUT, in few files:
#
#   final.log      every step's output, in order, with its status
#   gpu-tests.log  the GPU test binary's -test.v output
#   bench.jsonl    one zwrite-bench/1 record per line (zwrite and tensorstore)
#   summary.txt    the bench table and the status of every step
#
# Steps: (a) machine and GPU summary; (b) GPU tests; (c) round trips: the
# acceptance check of issue 3 for each codec on the cpu and gpu backends,
# ragged shapes and dtypes on the gpu backend, each also read back by
# `zwrite verify --raw` and by tensorstore (scripts/interop/
# tensorstore_check.py), the same at the scenarios' chunk sizes, --depth 1
# vs --depth 4 store identity, and gpu vs cpu identity for codec none;
# (d) benches with --prefill and a discard sink: zwrite gpu and cpu for
# none, lz4, zstd, then tensorstore_bench.py on the same scenario and codec.
#
# Every step runs under `timeout`, logs its status and the script goes on
# whatever it returns; a global budget (BUDGET seconds, default 530) cuts
# later steps short so the whole run ends in time, keeping RESERVE seconds
# for the summary.
#
# Local check without a GPU or tensorstore (those steps are skipped, the
# depth check runs on the cpu backend, frames are one epoch):
#   DRY=1 OUT=/tmp/final-out ZWRITE=bin/zwrite scripts/device/final.sh
# Environment: OUT (required), BIN (.dev/final), ZWRITE, GPUTEST, PYTHON,
# BUDGET, RESERVE, DRY, SCENARIOS ("medfmt orca2 256cube"), CODECS ("none
# lz4 zstd"), FRAMES_<scenario>, TS_FRAMES_<scenario>, GPUTEST_CAP, WORK.
set -uo pipefail
export PYTHONUNBUFFERED=1 LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
: "${OUT:?set OUT to the folder the results go to}"
mkdir -p "$OUT"
BIN=${BIN:-$ROOT/.dev/final}
ZWRITE=${ZWRITE:-$BIN/zwrite}
GPUTEST=${GPUTEST:-$BIN/gpu.test}
PYTHON=${PYTHON:-python3}
DRY=${DRY:-0}
BUDGET=${BUDGET:-530}
RESERVE=${RESERVE:-15}
SCENARIOS=${SCENARIOS-medfmt orca2 256cube} # empty: no benches
CODECS=${CODECS:-none lz4 zstd}
GPUTEST_CAP=${GPUTEST_CAP:-150}
case $ZWRITE in /*) ;; *) ZWRITE=$ROOT/$ZWRITE ;; esac
case $GPUTEST in /*) ;; *) GPUTEST=$ROOT/$GPUTEST ;; esac
T0=$(date +%s)

LOG=$OUT/final.log JSONL=$OUT/bench.jsonl SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$JSONL"
exec > >(tee -a "$LOG") 2>&1

W=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/zwfinal.XXXXXX")}
mkdir -p "$W"
STEPS=$W/steps.tsv
: >"$STEPS"
trap 'rm -rf "$W"' EXIT

# step, skip, elapsed, steps_summary, unpack_bin
. "$ROOT/scripts/device/lib.sh"
if ls "$BIN"/*.xz >/dev/null 2>&1; then
	# build.sh packs the binaries: unpack them (ZWRITE/GPUTEST as set
	# by the user win).
	BIN=$(unpack_bin "$BIN" "$W/bin")
	[ -x "$ZWRITE" ] || ZWRITE=$BIN/zwrite
	[ -x "$GPUTEST" ] || GPUTEST=$BIN/gpu.test
fi

# treehash STORE: one sha256 over every file of a store (path and bytes).
treehash() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64
}

# rt TAG BACKEND CODEC RAW DTYPE SHAPE CHUNK SHARD [APPEND FLAGS...]:
# append RAW, then zwrite cat | cmp, zwrite verify --raw, tensorstore.
rt() {
	local tag=$1 be=$2 codec=$3 raw=$4 dt=$5 shape=$6 chunk=$7 shard=$8
	shift 8
	local s=$W/rt/$tag.zarr
	rm -rf "$s"
	mkdir -p "$W/rt"
	"$ZWRITE" append -o "$s" --shape "$shape" --dtype "$dt" --chunk "$chunk" --shard "$shard" \
		--codec "$codec" --backend "$be" "$@" "$raw" || { echo "rt $tag: append failed"; return 1; }
	"$ZWRITE" cat "$s" | cmp - "$raw" || { echo "rt $tag: zwrite cat differs from the input"; return 1; }
	echo "rt $tag: zwrite cat | cmp ok"
	"$ZWRITE" verify "$s" --raw "$raw" || { echo "rt $tag: zwrite verify --raw failed"; return 1; }
	if [ "$HAVE_TS" = 1 ]; then
		"$PYTHON" "$ROOT/scripts/interop/tensorstore_check.py" "$s" "$raw" "$dt" ||
			{ echo "rt $tag: tensorstore disagrees"; return 1; }
	fi
	rm -rf "$s"
}

# depth_ident BACKEND CODEC RAW: stores written with --depth 1 and 4 have
# the same files, byte for byte.
depth_ident() {
	local be=$1 codec=$2 raw=$3 h=()
	for d in 1 4; do
		local s=$W/depth-$d.zarr
		rm -rf "$s"
		"$ZWRITE" append -o "$s" --shape 0,512,512 --dtype uint16 --chunk 8,128,128 \
			--shard 16,256,512 --codec "$codec" --backend "$be" --depth "$d" "$raw" ||
			{ echo "depth $d: append failed"; return 1; }
		h+=("$(treehash "$s")")
		echo "depth $d $be $codec: $(find "$s" -type f | wc -l) files, tree sha256 ${h[-1]}"
	done
	"$ZWRITE" verify "$W/depth-4.zarr" --raw "$raw" >/dev/null || { echo "depth 4 store does not verify"; return 1; }
	rm -rf "$W"/depth-*.zarr
	[ "${h[0]}" = "${h[1]}" ] || { echo "depth 1 and depth 4 stores differ"; return 1; }
	echo "depth 1 == depth 4 ($be $codec)"
}

# same_store CODEC RAW: the gpu and cpu backends write identical stores.
same_store() {
	local h=()
	for be in cpu gpu; do
		rm -rf "$W/same-$be.zarr"
		"$ZWRITE" append -o "$W/same-$be.zarr" --shape 0,512,512 --dtype uint16 --chunk 8,128,128 \
			--shard 16,256,512 --codec "$1" --backend "$be" "$2" || { echo "$be: append failed"; return 1; }
		h+=("$(treehash "$W/same-$be.zarr")")
		echo "$be $1: tree sha256 ${h[-1]}"
	done
	rm -rf "$W"/same-*.zarr
	[ "${h[0]}" = "${h[1]}" ] || { echo "gpu and cpu stores differ ($1)"; return 1; }
}

# jsonl FILE: append FILE's record(s) to bench.jsonl, one per line.
jsonl() {
	if command -v "$PYTHON" >/dev/null 2>&1; then
		"$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as f:
    for r in (d if isinstance(d, list) else [d]):
        f.write(json.dumps(r, separators=(",", ":")) + "\n")' "$1" "$JSONL"
	else
		# JSON strings hold no raw newlines, so joining lines keeps it valid.
		{ tr -d '\n' <"$1"; echo; } >>"$JSONL"
	fi
}

# bench_zw SCEN CODEC BACKEND [FRAMES] (none: the bench's default)
bench_zw() {
	local rec=$W/rec-$1-$2-$3.json frames=()
	[ -n "${4:-}" ] && frames=(--frames "$4")
	rm -f "$rec"
	"$ZWRITE" bench --scenario "$1" --codec "$2" --backend "$3" --prefill "${frames[@]}" \
		--progress=false --json "$rec" || return
	jsonl "$rec"
}

# bench_ts SCEN CODEC FRAMES EPOCH_RAW
bench_ts() {
	local rec=$W/ts-$1-$2.json
	rm -f "$rec"
	"$PYTHON" "$ROOT/scripts/peer/tensorstore_bench.py" --scenario "$1" --codec "$2" \
		--frames "$3" --raw "$4" --fill thirds --json "$rec" || return
	jsonl "$rec"
}

# epoch_raw SCEN FILE: the scenario's first epoch (thirds), as zwrite
# bench --prefill makes it, for tensorstore_bench.py --raw.
epoch_raw() {
	local shape
	shape=$("$PYTHON" -c '
import sys; sys.path.insert(0, sys.argv[1])
from tensorstore_bench import SCENARIOS
g = SCENARIOS[sys.argv[2]]
print(",".join(str(v) for v in [g["chunk"][0]] + g["shape"][1:]))' "$ROOT/scripts/peer" "$1") || return
	"$ZWRITE" synth --shape "$shape" --dtype uint16 --fill thirds >"$2"
}

export -f rt depth_ident same_store treehash jsonl bench_zw bench_ts epoch_raw
export ROOT ZWRITE GPUTEST PYTHON W JSONL

echo "final.sh: $(date -u +%FT%TZ) on $(hostname), budget $BUDGET s, dry $DRY, work $W"

# ---- (a) machine ------------------------------------------------------------
HAVE_GPU=0
if [ "${NO_GPU:-0}" != 1 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
	HAVE_GPU=1
fi
HAVE_TS=0
if "$PYTHON" -c 'import numpy, tensorstore' >/dev/null 2>&1; then HAVE_TS=1; fi
export HAVE_TS
[ -x "$ZWRITE" ] || chmod +x "$ZWRITE" 2>/dev/null
[ -f "$GPUTEST" ] && { [ -x "$GPUTEST" ] || chmod +x "$GPUTEST" 2>/dev/null; }
echo "gpu $HAVE_GPU, tensorstore $HAVE_TS, zwrite $ZWRITE, cores $(nproc), $(free -g | awk '/^Mem:/ { print $2 " GiB RAM" }')"

if [ "$HAVE_GPU" = 1 ]; then
	step nvidia-smi 20 bash -c 'nvidia-smi --query-gpu=name,memory.total,pcie.link.gen.max,pcie.link.width.max,driver_version,clocks.max.sm --format=csv; nvidia-smi'
else
	skip nvidia-smi "no GPU here"
fi
step "zwrite version" 10 "$ZWRITE" version
step "zwrite info --gpu" 20 "$ZWRITE" info --gpu
if [ "$HAVE_TS" = 1 ]; then
	step "python versions" 20 "$PYTHON" -c 'import sys, numpy, tensorstore; from importlib.metadata import version; print(sys.version.split()[0], "numpy", numpy.__version__, "tensorstore", version("tensorstore"))'
else
	skip "python versions" "no numpy + tensorstore for $PYTHON"
fi

# ---- (b) GPU tests ----------------------------------------------------------
if [ -f "$GPUTEST" ]; then
	# Without a GPU the tests skip, saying why (a quick check of this step).
	# Run in the package directory, as `go test` would. -test.timeout a bit
	# under the step's limit, so a hang prints its goroutines.
	left=$((BUDGET - RESERVE - $(elapsed)))
	gl=$((GPUTEST_CAP < left ? GPUTEST_CAP : left))
	step "gpu tests" "$GPUTEST_CAP" bash -c 'cd "$ROOT/internal/gpu" && "$GPUTEST" -test.v -test.count=1 -test.timeout '"$((gl > 15 ? gl - 10 : gl))"'s >"$1" 2>&1' _ "$OUT/gpu-tests.log"
	echo "gpu tests: $(grep -c '^--- PASS\|^    --- PASS' "$OUT/gpu-tests.log") passed, $(grep -c -- '--- FAIL' "$OUT/gpu-tests.log") failed, $(grep -c -- '--- SKIP' "$OUT/gpu-tests.log") skipped"
	grep -- '--- FAIL\|^panic\|^FAIL\|^ok\|^PASS' "$OUT/gpu-tests.log" | head -40
	# On the GPU machine a skip is news: list them.
	[ "$HAVE_GPU" = 1 ] && grep -- '--- SKIP' "$OUT/gpu-tests.log" | head -20
else
	skip "gpu tests" "no $GPUTEST"
	echo "gpu tests skipped: no $GPUTEST" >"$OUT/gpu-tests.log"
fi

# ---- (c) round trips --------------------------------------------------------
BACKENDS_RT="cpu"
[ "$HAVE_GPU" = 1 ] && BACKENDS_RT="cpu gpu"
RAGGED_BE=gpu
[ "$HAVE_GPU" = 1 ] || RAGGED_BE=cpu # dry: the same checks on the cpu backend

# The acceptance check of issue 3: 37 frames of 3x129x67 uint16 noise.
head -c $((37 * 3 * 129 * 67 * 2)) /dev/urandom >"$W/f.raw"
for be in $BACKENDS_RT; do
	for c in $CODECS; do
		step "issue3 $be $c" 30 rt "issue3-$be-$c" "$be" "$c" "$W/f.raw" uint16 0,3,129,67 4,2,32,32 8,2,64,64
	done
done

# Ragged shapes and every dtype class on the GPU backend: shape is what
# append gets, frames what synth makes (dim 0 of the data).
#   tag      dtype   fill   frames  shape          chunk        shard
RAGGED="
r5-i16     int16   thirds 11  0,3,5,7,9      2,2,2,4,4    4,2,4,8,8
r4-f32     float32 rand   37  0,2,129,67     4,1,32,32    8,2,64,64
r4-i32fix  int32   xor    19  19,3,33,65     4,3,8,16     8,3,16,32
r3-u8fix   uint8   thirds 23  23,37,53       5,16,16      10,32,48
r2-f64     float64 urand  50  0,1000         7,64         14,256
r1-u64     uint64  xor    1234 0             100          300
"
while read -r tag dt fill frames shape chunk shard; do
	[ -n "$tag" ] || continue
	raw=$W/$tag.raw
	if [ "$fill" = urand ]; then
		rest=$(echo "$shape" | awk -F, '{ p = 1; for (i = 2; i <= NF; i++) p *= $i; print p }')
		size=$(case $dt in *8) echo 1 ;; *16) echo 2 ;; *32) echo 4 ;; *) echo 8 ;; esac)
		head -c $((frames * rest * size)) /dev/urandom >"$raw"
	else
		dshape=$frames
		case $shape in *,*) dshape=$frames,${shape#*,} ;; esac
		"$ZWRITE" synth --shape "$dshape" --dtype "$dt" --fill "$fill" >"$raw" ||
			{ echo "synth $tag failed"; continue; }
	fi
	for c in $CODECS; do
		step "ragged $RAGGED_BE $c $tag" 30 rt "$tag-$RAGGED_BE-$c" "$RAGGED_BE" "$c" "$raw" "$dt" "$shape" "$chunk" "$shard"
	done
	rm -f "$raw"
done <<<"$RAGGED"

# --depth 1 vs --depth 4: identical stores (400 frames of 512x512, ~13
# batches of 32 MiB).
if "$ZWRITE" synth --shape 400,512,512 --dtype uint16 --fill thirds >"$W/depth.raw"; then
	for c in $CODECS; do
		step "depth 1 vs 4 $RAGGED_BE $c" 40 depth_ident "$RAGGED_BE" "$c" "$W/depth.raw"
	done
	# Codec none: the GPU stage's store is the CPU stage's, byte for byte.
	if [ "$HAVE_GPU" = 1 ]; then
		step "gpu none == cpu none" 40 same_store none "$W/depth.raw"
	else
		skip "gpu none == cpu none" "no GPU"
	fi
else
	echo "synth for the depth check failed"
fi
rm -f "$W/depth.raw" "$W/f.raw"

# Scenario-sized chunks (256 KiB: two 128 KiB zstd blocks, many lz4
# blocks) with a partial last epoch and shard row, on the GPU backend.
#   scenario frames  frame shape        chunk           shard
SCALE="
orca2      48  2,2048,2304      32,1,64,64      640,2,512,576
medfmt     5   1,10240,15360    4,1,128,256     12,1,2560,3840
256cube    6   256,256,256,3    4,32,32,32,1    64,128,128,128,3
"
while read -r scen frames fshape chunk shard; do
	[ -n "$scen" ] || continue
	[ "$DRY" = 1 ] && frames=1
	raw=$W/scale-$scen.raw
	"$ZWRITE" synth --shape "$frames,$fshape" --dtype uint16 --fill thirds >"$raw" ||
		{ echo "synth $scen failed"; continue; }
	for c in $CODECS; do
		step "scale $RAGGED_BE $c $scen ($frames frames)" 45 rt "scale-$scen-$RAGGED_BE-$c" "$RAGGED_BE" "$c" "$raw" uint16 "0,$fshape" "$chunk" "$shard"
	done
	rm -f "$raw"
done <<<"$SCALE"

# ---- (d) benches ------------------------------------------------------------
# Frames per run: ~16 GB of input for zwrite (a few seconds at 5-15 GB/s),
# whole shard rows for tensorstore (it writes shard rows; one row of orca2
# is already 12 GB). DRY: one epoch, so the script's logic runs quickly.
if [ "$DRY" = 1 ]; then
	def_zw() { case $1 in orca2) echo 32 ;; *) echo 4 ;; esac; }
	def_ts() { case $1 in orca2) echo 640 ;; medfmt) echo 12 ;; *) echo 64 ;; esac; }
else
	def_zw() { case $1 in medfmt) echo 52 ;; orca2) echo 896 ;; 256cube) echo 160 ;; esac; }
	def_ts() { case $1 in medfmt) echo 24 ;; orca2) echo 640 ;; 256cube) echo 64 ;; esac; }
fi
BACKENDS_BENCH="cpu"
[ "$HAVE_GPU" = 1 ] && BACKENDS_BENCH="gpu cpu"
# zwrite first (every scenario), then tensorstore by priority (zstd, then
# lz4, then none; each over the scenarios), so that if the budget runs out
# what goes missing is the least needed.
for scen in $SCENARIOS; do
	v=FRAMES_$scen
	zf=${!v:-$(def_zw "$scen")}
	for be in $BACKENDS_BENCH; do
		for c in $CODECS; do
			step "bench zwrite $scen $be $c (${zf:-default} frames)" 45 bench_zw "$scen" "$c" "$be" "$zf"
		done
	done
done
if [ "$HAVE_TS" = 1 ] && [ "$DRY" != 1 ]; then
	for scen in $SCENARIOS; do
		step "epoch for tensorstore $scen" 30 epoch_raw "$scen" "$W/epoch-$scen.raw"
	done
	for c in zstd lz4 none; do
		case " $CODECS " in *" $c "*) ;; *) continue ;; esac
		for scen in $SCENARIOS; do
			[ -s "$W/epoch-$scen.raw" ] || continue
			v=TS_FRAMES_$scen
			tf=${!v:-$(def_ts "$scen")}
			step "bench tensorstore $scen $c (${tf:-one shard row of} frames)" 75 bench_ts "$scen" "$c" "${tf:-0}" "$W/epoch-$scen.raw"
		done
	done
	rm -f "$W"/epoch-*.raw
else
	skip "bench tensorstore" "no numpy + tensorstore for $PYTHON (or DRY)"
fi

# ---- summary ----------------------------------------------------------------
{
	echo "final.sh summary: $(date -u +%FT%TZ), $(elapsed) s of $BUDGET s"
	echo
	if command -v "$PYTHON" >/dev/null 2>&1; then
		"$PYTHON" "$ROOT/scripts/device/bench_summary.py" "$JSONL" || echo "(no bench summary)"
	else
		echo "no $PYTHON: see bench.jsonl"
	fi
	echo
	steps_summary
} >"$SUMMARY" 2>&1
cat "$SUMMARY"
echo "final.sh: done in $(elapsed) s; results in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
# Let tee flush final.log before the shell exits.
exec >&- 2>&-
sleep 1
