#!/usr/bin/env bash
# Build internal/gpu/ptx/NAME.ptx from internal/gpu/kernels/NAME.cu with
# nvcc (-ptx -arch=compute_80: the driver JIT-compiles it for any card from
# Ampere on). Each PTX starts with "// sha256 HEX NAME.cu", the hash of its
# source, which TestPTXMatchesSource checks. Usage: scripts/ptx.sh [NAME.cu...]
# KERNELS and PTX_OUT override the source and output directories.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${KERNELS:-$root/internal/gpu/kernels}
dst=${PTX_OUT:-$root/internal/gpu/ptx}
NVCC=${NVCC:-nvcc}
if ! command -v "$NVCC" >/dev/null 2>&1; then
	for d in /usr/local/cuda/bin /opt/cuda/bin; do
		[ -x "$d/nvcc" ] && NVCC=$d/nvcc && break
	done
fi
if ! command -v "$NVCC" >/dev/null 2>&1; then
	echo "ptx.sh: nvcc not found (set NVCC or install the CUDA toolkit); the committed PTX is left as is" >&2
	exit 1
fi
if [ $# -gt 0 ]; then files=("$@"); else files=("$src"/*.cu); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for cu in "${files[@]}"; do
	[ -f "$cu" ] || cu=$src/$cu
	name=$(basename "$cu" .cu)
	"$NVCC" -ptx -arch=compute_80 -o "$tmp/$name.ptx" "$cu"
	sum=$(sha256sum "$cu" | cut -d' ' -f1)
	{ echo "// sha256 $sum $name.cu"; cat "$tmp/$name.ptx"; } >"$dst/$name.ptx"
	echo "ptx.sh: $dst/$name.ptx"
done
