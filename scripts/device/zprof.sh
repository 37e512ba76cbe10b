#!/usr/bin/env bash
# zprof.sh: tune the GPU zstd kernels on the GPU machine. For each variant
# (VARIANTS="name:nvcc flags;name:flags", default below) it builds
# kernels/zstd.cu with the machine's nvcc into its own ZWRITE_PTX_DIR,
# times each kernel on camera and thirds data (TestZstdGPUProfile, with
# the occupancy of zstd_blocks and, for -DZS_PROF builds, its cycles per
# phase), and runs zwrite bench --prefill with blosc-zstd and zstd on the
# orca2 camera fill through it. NCU=1 adds an Nsight Compute profile of
# one zstd_blocks launch of the first variant (blosc-zstd byte, camera).
# Usage on the GPU machine (run tool, carry .dev/final):
#   OUT=$OUT scripts/device/zprof.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-/tmp/zprof}
mkdir -p "$OUT"
. scripts/device/lib.sh
bin=$(unpack_bin .dev/final /tmp/zprof-bin)
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
VARIANTS=${VARIANTS:-"base:;prof:-DZS_PROF"}
FRAMES=${FRAMES:-640}
IFS=';' read -ra vs <<<"$VARIANTS"
# Every variant's sm_90 cubin at once (nvcc takes ~20 s for zstd.cu; the
# loader takes a cubin of the card's arch over the PTX, which is only a
# placeholder here: ZWRITE_PTX_DIR is used when it holds zstd.ptx).
for v in "${vs[@]}"; do
	name=${v%%:*}
	flags=${v#*:}
	dir=/tmp/zprof-ptx/$name
	mkdir -p "$dir"
	echo "// placeholder: the sm_90 cubin beside it is loaded" >"$dir/zstd.ptx"
	# shellcheck disable=SC2086
	"$NVCC" -cubin -arch=sm_90 -lineinfo -Xptxas -v $flags -o "$dir/zstd.sm_90.cubin" internal/gpu/kernels/zstd.cu >"/tmp/zprof-nvcc-$name.log" 2>&1 &
done
wait
first=""
for v in "${vs[@]}"; do
	name=${v%%:*}
	flags=${v#*:}
	dir=/tmp/zprof-ptx/$name
	if [ ! -s "$dir/zstd.sm_90.cubin" ]; then
		echo "=== $name: nvcc failed"
		tail -20 "/tmp/zprof-nvcc-$name.log"
		continue
	fi
	grep -A2 'Compiling entry function .zstd_blocks\|Compiling entry function .zstd_seqs' "/tmp/zprof-nvcc-$name.log" | grep -i 'registers\|spill' | head -4
	[ -z "$first" ] && first=$dir
	echo "=== $name ($flags)"
	ZWRITE_PTX_DIR=$dir ZWRITE_ZSTD_PROF=1 ZWRITE_ZSTD_PROF_FILLS=${FILLS:-camera,thirds} \
		timeout 120 "$bin/gpu.test" -test.run 'TestZstdGPUProfile' -test.v 2>&1 | grep -v '^=== RUN\|^--- PASS\|^PASS'
	case $flags in *ZS_PROF*) continue ;; esac
	# The real thing: bench --prefill end to end (orca2 camera; and the
	# camera file's geometry), twice each.
	for c in "blosc-zstd --shuffle byte" "zstd"; do
		for geo in "--scenario orca2" "--shape 0,2048,2048 --chunk 64,256,256 --shard 256,2048,2048"; do
			f=$FRAMES
			case $geo in *2048,2048*) f=$((FRAMES / 2)) ;; esac
			for rep in 1 2; do
				# shellcheck disable=SC2086
				ZWRITE_PTX_DIR=$dir timeout 60 "$bin/zwrite" bench $geo --fill camera --prefill --frames "$f" \
					--backend gpu --codec $c --baselines=false 2>&1 | grep -E 'input|ratio|compress ' | head -4 | sed "s/^/  $name $c ${geo%% *} #$rep: /"
			done
		done
	done
done
if [ "${NCU:-0}" = 1 ] && [ -n "$first" ] && command -v ncu >/dev/null; then
	echo "=== ncu (first variant, blosc-zstd byte, camera)"
	ZWRITE_PTX_DIR=$first ZWRITE_ZSTD_PROF=1 ZWRITE_ZSTD_PROF_FILLS=camera ZWRITE_ZSTD_PROF_CODECS="blosc-zstd byte" \
		timeout 240 ncu --clock-control none -k regex:zstd_blocks -c 1 --set full --import-source yes -f -o "$OUT/zb" \
		"$bin/gpu.test" -test.run TestZstdGPUProfile >"$OUT/ncu-run.log" 2>&1
	tail -5 "$OUT/ncu-run.log"
	ncu -i "$OUT/zb.ncu-rep" --page details >"$OUT/ncu-details.txt" 2>&1
	ncu -i "$OUT/zb.ncu-rep" --page source --csv --print-source cuda >"$OUT/ncu-source.csv" 2>&1 || true
	sed -n '/Occupancy/,+30p;/Warp State/,+40p;/Scheduler/,+20p' "$OUT/ncu-details.txt" | head -120
fi
