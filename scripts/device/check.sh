#!/usr/bin/env bash
# check.sh: the GPU machine's correctness pass (no Go there): prebuilt
# binaries in .dev/final (scripts/device/build.sh), results in $OUT:
#
#   check.log      every step, in order, with its status
#   gpu-tests.log  the GPU test binary (-test.v), embedded images
#   gpu-tests13.log the same GPU tests on the images this machine's nvcc
#                  builds (CUDA 13: the images to commit)
#   ptx.tar.gz     internal/gpu/ptx as this machine's nvcc builds it
#
# Steps: machine summary; make the PTX and cubins with this nvcc; the GPU
# tests on both image sets; round trips of every codec x shuffle on the
# GPU backend (cat | cmp, verify --raw, tensorstore); GPU vs CPU store
# identity where the encoder is shared (blosc-lz4, none; pyramids); a
# pyramid read back by tensorstore against the reference levels (the CPU
# backend's, checked against the reference by make test).
set -uo pipefail
export PYTHONUNBUFFERED=1 LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
: "${OUT:?set OUT}"
BIN=${BIN:-$ROOT/.dev/final}
W=$(mktemp -d /dev/shm/zwcheck.XXXXXX)
trap 'rm -rf "$W"' EXIT
. "$ROOT/scripts/device/lib.sh"
BIN=$(unpack_bin "$BIN" "$W/bin")
ZW=$BIN/zwrite
exec > >(tee -a "$OUT/check.log") 2>&1
T0=$(date +%s)
st() { local n=$1; shift; local t=$(date +%s); "$@"; local rc=$?; echo "=== $( ((rc==0)) && echo ok || echo FAIL) $n (rc $rc, $(( $(date +%s)-t )) s, at $(( $(date +%s)-T0 )) s)"; return $rc; }

nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv
nvcc --version | tail -2
python3 -c 'import tensorstore, numpy; from importlib.metadata import version; print("tensorstore", version("tensorstore"), "numpy", numpy.__version__)'
nproc; free -g | head -2

# QUICK=1: only the CLI checks below (no PTX build, no GPU tests: bench.sh
# runs those), on the committed images.
if [ -z "${QUICK:-}" ]; then
# PTX and cubins from this machine's CUDA.
mkdir -p "$W/ptx"
st ptx env PTX_OUT="$W/ptx" scripts/ptx.sh >"$W/ptx.log" 2>&1 || tail -20 "$W/ptx.log"
cp internal/gpu/ptx/README.md "$W/ptx/" 2>/dev/null
tar czf "$OUT/ptx.tar.gz" -C "$W" ptx
ls -la "$W/ptx" | tail -30

RUN='GPU|Stage|Cubin|Discover|Scratch|Pipeline|Startup|Downsample'
(cd internal/gpu && st gpu-tests timeout 240 "$BIN/gpu.test" -test.v -test.run "$RUN" -test.timeout 230s >"$OUT/gpu-tests.log" 2>&1)
grep -E "^(--- FAIL|FAIL|ok|PASS)" "$OUT/gpu-tests.log" | head -40
(cd internal/gpu && st gpu-tests13 env ZWRITE_PTX_DIR="$W/ptx" timeout 200 "$BIN/gpu.test" -test.v -test.run "$RUN" -test.timeout 190s >"$OUT/gpu-tests13.log" 2>&1)
grep -E "^(--- FAIL|FAIL|ok|PASS)" "$OUT/gpu-tests13.log" | head -40
grep -hE "GB/s|ratio" "$OUT/gpu-tests.log" | head -60

export ZWRITE_PTX_DIR="$W/ptx"
fi

# Round trips through the CLI on the GPU backend.
"$ZW" synth --shape 64,512,640 --dtype u16 --fill camera >"$W/cam.raw"
G="--shape 0,512,640 --dtype u16 --chunk 16,128,128 --shard 32,256,640"
for c in none zstd lz4:byte lz4:bit lz4:none blosc-zstd:byte blosc-zstd:bit blosc-zstd:none; do
	codec=${c%%:*}; sh=""; [ "$c" != "$codec" ] && sh="--shuffle ${c#*:}"
	for be in gpu cpu; do
		s="$W/rt-$be-${c/:/-}.zarr"
		st "rt $be $c" "$ZW" append -o "$s" $G --codec $codec $sh --backend $be "$W/cam.raw" &&
			"$ZW" cat "$s" | cmp - "$W/cam.raw" && "$ZW" verify "$s" --raw "$W/cam.raw" >/dev/null &&
			python3 scripts/interop/tensorstore_check.py "$s" "$W/cam.raw" uint16 >/dev/null && echo "rt $be $c: cat, verify, tensorstore ok"
	done
	if [ "$codec" != zstd ] && [ "$codec" != blosc-zstd ]; then
		diff -r "$W/rt-gpu-${c/:/-}.zarr" "$W/rt-cpu-${c/:/-}.zarr" >/dev/null && echo "identity gpu==cpu $c: ok" || echo "identity gpu==cpu $c: FAIL"
	fi
done
# A pyramid on both backends: identical stores (blosc-lz4), every level
# read by tensorstore equal to the CPU backend's levels.
for be in gpu cpu; do
	st "pyramid $be" "$ZW" append -o "$W/pyr-$be.zarr" $G --codec lz4 --dims t,y,x --levels 4 --backend $be "$W/cam.raw"
	st "pyramid $be t" "$ZW" append -o "$W/pyrt-$be.zarr" $G --codec zstd --dims t,y,x --levels 3 --downsample-dims t,y,x --backend $be "$W/cam.raw"
done
diff -r "$W/pyr-gpu.zarr" "$W/pyr-cpu.zarr" >/dev/null && echo "identity pyramid gpu==cpu: ok" || echo "identity pyramid gpu==cpu: FAIL"
for k in 0 1 2; do
	"$ZW" cat "$W/pyrt-cpu.zarr/$k" >"$W/lvl$k.raw"
	"$ZW" cat "$W/pyrt-gpu.zarr/$k" | cmp - "$W/lvl$k.raw" && echo "pyramid t,y,x level $k gpu==cpu data: ok" || echo "pyramid level $k: FAIL"
	python3 scripts/interop/tensorstore_check.py "$W/pyrt-gpu.zarr/$k" "$W/lvl$k.raw" uint16 >/dev/null && echo "tensorstore level $k: ok" || echo "tensorstore level $k: FAIL"
done
# Resume on the GPU of a store begun on the CPU: same bytes as one run.
head -c $((20*512*640*2)) "$W/cam.raw" >"$W/part.raw"
"$ZW" append -o "$W/res.zarr" $G --codec lz4 --backend cpu "$W/part.raw" && st "resume gpu" "$ZW" append --resume --skip auto -o "$W/res.zarr" --backend gpu "$W/cam.raw" &&
	diff -r "$W/res.zarr" "$W/rt-cpu-lz4-byte.zarr" && echo "resume cpu->gpu == one run: ok"
echo "total $(( $(date +%s)-T0 )) s"
