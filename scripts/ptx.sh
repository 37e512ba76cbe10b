#!/usr/bin/env bash
# Build, for each internal/gpu/kernels/NAME.cu, the images the GPU backend
# embeds (internal/gpu/ptx):
#   NAME.ptx           nvcc -ptx -arch=compute_80, JIT-compiled by the driver
#                      for any card from Ampere on (the fallback)
#   NAME.sm_XY.cubin   SASS for sm_80, sm_86, sm_89, sm_90 and the newest
#                      arch this nvcc supports, loaded without JIT on a card
#                      of the same major version and minor >= Y
#   cubins.txt         one line per cubin: arch, module, source hash,
#                      sha256 and size of the cubin (cubins are binary, so
#                      their source hash is recorded here)
# The source hash is the sha256 of NAME.cu followed by every "*.cuh" file it
# includes, recursively, in order of first inclusion (TestPTXMatchesSource
# and TestCubinsMatchSource compute the same). Each PTX starts with
# "// sha256 HEX NAME.cu".
#
# Usage: scripts/ptx.sh [NAME.cu...]   (default: every kernel)
# KERNELS and PTX_OUT override the source and output directories, NVCC the
# compiler, ARCHS the cubin list (space separated, e.g. "sm_80 sm_90").
# PTX_ISA (e.g. 7.8) declares that PTX ISA version in NAME.ptx instead of
# the compiler's, and fails unless ptxas assembles the PTX under it: a
# newer nvcc's PTX that drivers older than it still JIT-compile (a cubin
# built by a CUDA newer than the driver is refused; the loader then falls
# back to the PTX).
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
	echo "ptx.sh: nvcc not found (set NVCC or install the CUDA toolkit); the committed images are left as is" >&2
	exit 1
fi

# The newest real arch this nvcc knows (compute_XY listed -> sm_XY).
newest=$("$NVCC" --list-gpu-arch 2>/dev/null | sed -n 's/^compute_\([0-9][0-9]*\)$/\1/p' | sort -n | tail -1)
if [ -z "${ARCHS:-}" ]; then
	ARCHS="sm_80 sm_86 sm_89 sm_90"
	if [ -n "$newest" ] && ! printf '%s\n' $ARCHS | grep -qx "sm_$newest"; then
		ARCHS="$ARCHS sm_$newest"
	fi
fi

# closure prints NAME.cu and the .cuh files it includes, depth first.
declare -A seen
closure() {
	local f=$1 dir inc
	[ -n "${seen[$f]:-}" ] && return
	seen[$f]=1
	echo "$f"
	dir=$(dirname "$f")
	for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\.cuh\)".*/\1/p' "$f"); do
		closure "$dir/$inc"
	done
}
source_hash() {
	seen=()
	local files
	files=$(closure "$1")
	# shellcheck disable=SC2086
	cat $files | sha256sum | cut -d' ' -f1
}

if [ $# -gt 0 ]; then files=("$@"); else files=("$src"/*.cu); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
manifest=$dst/cubins.txt
touch "$manifest"
for cu in "${files[@]}"; do
	[ -f "$cu" ] || cu=$src/$cu
	name=$(basename "$cu" .cu)
	sum=$(source_hash "$cu")
	"$NVCC" -ptx -arch=compute_80 -o "$tmp/$name.ptx" "$cu"
	if [ -n "${PTX_ISA:-}" ]; then
		# Declare the older ISA, then let ptxas prove the PTX is valid
		# under it (it checks every instruction against .version).
		sed -i "s/^\.version .*/.version $PTX_ISA/" "$tmp/$name.ptx"
		"$(dirname "$(command -v "$NVCC")")/ptxas" -arch=sm_80 -o /dev/null "$tmp/$name.ptx"
	fi
	{ echo "// sha256 $sum $name.cu"; cat "$tmp/$name.ptx"; } >"$dst/$name.ptx"
	echo "ptx.sh: $dst/$name.ptx"
	rm -f "$dst/$name".sm_*.cubin
	grep -v " $name " "$manifest" >"$tmp/manifest" || true
	for arch in $ARCHS; do
		"$NVCC" -cubin -arch="$arch" -o "$dst/$name.$arch.cubin" "$cu"
		csum=$(sha256sum "$dst/$name.$arch.cubin" | cut -d' ' -f1)
		size=$(wc -c <"$dst/$name.$arch.cubin")
		echo "$arch $name $sum $csum $size" >>"$tmp/manifest"
		echo "ptx.sh: $dst/$name.$arch.cubin ($size bytes)"
	done
	sort "$tmp/manifest" >"$manifest"
done
