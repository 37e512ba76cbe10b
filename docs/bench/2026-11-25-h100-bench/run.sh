#!/usr/bin/env bash
# The one device run of issue 5 (helper bench): zwrite's CPU backend
# against tensorstore on orca2 and medfmt, zstd and lz4, prefill, discard
# sink (tensorstore: memory kvstore), same machine, back to back.
# Run from the repository root with OUT set; everything lands in $OUT.
set -u
B=$(cd "$(dirname "$0")" && pwd)
export ZWRITE=$B/zwrite PYTHON=${PYTHON:-python3}
R=$OUT/records
mkdir -p "$R"
exec > >(tee "$OUT/log.txt") 2>&1
t0=$SECONDS
echo "== machine"; nproc; free -g | head -2; nvidia-smi -L 2>&1 | head -2
chmod +x "$ZWRITE" 2>/dev/null
"$ZWRITE" version
"$PYTHON" -c 'import tensorstore, numpy, sys; print("python", sys.version.split()[0], "tensorstore", tensorstore.__version__, "numpy", numpy.__version__)'

echo "== numpy fills vs zwrite synth"
check() { # shape chunk shard fill
	"$ZWRITE" synth --shape "$1" --fill "$4" >/tmp/fill.raw &&
		"$PYTHON" scripts/peer/tensorstore_bench.py --shape "$1" --chunk "$2" --shard "$3" --fill "$4" --check-fill /tmp/fill.raw
}
check 8,2,40,70 4,1,16,16 8,2,32,32 thirds # all fills and dtypes matched on the dev VM

echo "== tensorstore smoke (tiny, numpy fill)"
if ! timeout 30 "$PYTHON" scripts/peer/tensorstore_bench.py --shape 64,2,64,96 --chunk 4,1,32,32 \
	--shard 16,2,64,96 --codec zstd,lz4,none --frames 64 --json-dir /tmp/tiny; then
	echo "tensorstore smoke FAILED; the big tensorstore runs are skipped"
	SKIP_TS=1
fi
echo "== smoke done at $((SECONDS - t0)) s"

if [ -z "${SKIP_TS:-}" ]; then
	echo "== compare orca2 (one shard row, 640 frames)"
	OUT_DIR=$R timeout 100 scripts/peer/compare.sh orca2 zstd,lz4 640 || echo "compare orca2 failed: $?"
	echo "== compare medfmt (one shard row, 12 frames)"
	OUT_DIR=$R timeout 70 scripts/peer/compare.sh medfmt zstd,lz4 12 || echo "compare medfmt failed: $?"
else
	for s in orca2:640 medfmt:12; do
		for c in zstd lz4; do
			"$ZWRITE" bench --scenario "${s%:*}" --codec $c --backend cpu --prefill --frames "${s#*:}" \
				--progress=false --json "$R/zwrite-cpu-${s%:*}-$c.json" || echo "zwrite ${s%:*} $c failed"
		done
	done
fi
echo "== done at $((SECONDS - t0)) s"
tar czf "$OUT/records.tgz" -C "$R" .
ls -l "$R"
