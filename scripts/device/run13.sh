#!/usr/bin/env bash
# run13.sh: on the GPU machine, rebuild the zstd images as committed
# (scripts/ptx.sh, PTX declared ISA 7.8 and checked by ptxas), prove that
# PTX alone (no cubins: every module JIT-compiled by the driver) encodes
# streams that decode, then bench.sh's bzstd and gputests parts with the
# new images (ZWRITE_PTX_DIR). Results in $OUT: ptx.log, ptx.tar (the
# images to commit), jit-tests.log, b/ (bench.sh's files).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
: "${OUT:?set OUT}"
. scripts/device/lib.sh
bin=$(unpack_bin .dev/final /tmp/r13bin)
rm -rf /tmp/ptxo /tmp/jit && mkdir -p /tmp/ptxo /tmp/jit && cp internal/gpu/ptx/* /tmp/ptxo/
if ! PTX_ISA=7.8 ARCHS="sm_80 sm_86 sm_89 sm_90" PTX_OUT=/tmp/ptxo scripts/ptx.sh zstd.cu >"$OUT/ptx.log" 2>&1; then
	echo "ptx.sh failed"
	tail -20 "$OUT/ptx.log"
	exit 1
fi
tar -C /tmp/ptxo -cf "$OUT/ptx.tar" .
cp /tmp/ptxo/*.ptx /tmp/jit/
(cd internal/gpu && ZWRITE_PTX_DIR=/tmp/jit timeout 200 "$bin/gpu.test" -test.v -test.count=1 \
	-test.run 'TestZstdGPUDecodes|TestBloscZstdGPUDecodes|TestZstdGPUDeterministic|TestBloscZstdGPUDeterministic' >"$OUT/jit-tests.log" 2>&1
echo "jit tests rc $?: $(grep -c -- '--- PASS' "$OUT/jit-tests.log") passed, $(grep -c -- '--- FAIL' "$OUT/jit-tests.log") failed"
grep -m3 'PTX (JIT)\|cubin' "$OUT/jit-tests.log")
ZWRITE_PTX_DIR=/tmp/ptxo OUT=$OUT/b BUDGET=${BUDGET:-380} PARTS=${PARTS:-"bzstd gputests"} GPURUN=${GPURUN:-"Conformance|BloscZstdGPU|ZstdGPUDecodes|ZstdGPUDeterministic"} FRAMES=1024 scripts/device/bench.sh >/dev/null 2>&1
tail -45 "$OUT/b/summary.txt"
grep -A6 "gpu tests:" "$OUT/b/bench.log" | head -12
grep -E "output rate / ceiling|^=== (FAIL|TIMEOUT|SKIP)" "$OUT/b/bench.log" | tail -20
# At most 8 files come back: bench.sh's folder as one tar.
cp "$OUT/b/summary.txt" "$OUT/summary.txt" 2>/dev/null
tar -C "$OUT" -cf "$OUT/b.tar" b && rm -rf "$OUT/b"
