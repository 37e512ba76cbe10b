#!/usr/bin/env bash
# bench.sh: the acceptance measurements on the GPU machine (one H200, 16
# cores, tmpfs at /dev/shm, Python 3 with numpy and tensorstore, no Go),
# everything beside its same-run baseline. Prebuilt binaries come in
# .dev/final/ (scripts/device/build.sh); results land in $OUT:
#
#   bench.log     every step's output, in order, with its status
#   jobs.jsonl    one zwrite-job/1 record per timed process (`time zwrite
#                 append FILE` and its peers: wall, user, sys, max RSS,
#                 bytes in and stored, GB/s counting the whole process)
#   bench.jsonl   zwrite-bench/1 records (zwrite bench --json and
#                 scripts/peer/tensorstore_bench.py), one per line
#   summary.txt   the tables of both and the status of every step
#
# Parts (PARTS, default "job codecs pyramid cpu gputests"):
#   job       the real job on the camera file (8.6 GB, tmpfs -> tmpfs):
#             GPU zstd vs tensorstore zstd, CPU lz4 vs tensorstore
#             blosc-lz4, GPU and CPU blosc-zstd (byte, bit) and CPU zstd vs
#             tensorstore on the same file; a one-frame GPU append with
#             CUDA_CACHE_DISABLE=1; a pipe (dd | zwrite) vs dd | dd; bench
#             --input (read and write ceilings); bench -o tmpfs vs discard
#   codecs    bench --codecs all per fill (camera, thirds, rand) and level
#             on both backends, tensorstore's zstd and blosc-zstd ratios on
#             the same data
#   pyramid   4-level mean pyramid vs no levels, same file, same run
#   cpu       the CPU backend, prefill, discard sink: medfmt and orca2,
#             zstd and lz4, vs tensorstore; a tmpfs directory sink
#   cpuz      the CPU backend alone (no tensorstore, ~70 s): medfmt and
#             orca2, zstd and lz4, twice each, prefill, discard sink; for
#             end to end / codec ceiling and the per-stage core shares
#   s3        bench -o s3:// against a local versitygw (posix backend on
#             tmpfs, loopback) with the same-run upload ceiling, then with
#             the server on half the cores and zwrite on the rest; needs
#             $BIN/versitygw(.xz) (build.sh packs it from the test cache)
#   gputests  the GPU test binary (conformance suite included)
#   scatter   BenchmarkScatter from $BIN/cpu.test (and cpu.old, an
#             earlier kernel, when there): memmove, the chunk-major
#             scatter and the shuffling one at every kernel step, plain
#             stores, on one lane and on one per core
#   touch     fault in TOUCH_GB (48) GB once, untimed, before the parts
#             that follow: the machine maps memory as it is first touched
#             (a few GB/s), which otherwise lands in the first runs' slots
#   prof      CPU profiles (--cpuprofile, into OUT) of the CPU backend on
#             medfmt zstd and orca2 lz4, for pprof against the same build
#   zratio    CPU zstd level 1 on 640 frames of the camera, thirds and rand
#             fills (the codecs part's tensorstore frame count; ZRATIO_FILLS
#             picks fills)
#   zratio_ts tensorstore's zstd level 1 on the same frames (thirds, rand)
#   depth     CPU medfmt zstd and lz4, 48 frames, at depth 2 and 3, with
#             tensorstore's medfmt zstd
#   bzstd     GPU blosc-zstd (byte shuffle) end to end: bench --prefill on
#             the orca2 camera fill (a warm-up, then 3 runs) and the camera
#             file appended (2 runs), with tensorstore's blosc-zstd on the
#             same data, and the CPU's append of the file
#
# Environment: OUT (required), BIN (.dev/final), PARTS, BUDGET (seconds,
# default 520), RESERVE (10), MEDFMT_FRAMES (the cpu, cpuz and prof
# parts' medfmt frames, default 48), FRAMES (camera file frames, default 1024:
# 8.6 GB of 2048x2048 uint16 frames, the file of issue 12), W (work
# folder, default under /dev/shm).
set -uo pipefail
export PYTHONUNBUFFERED=1 LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
: "${OUT:?set OUT to the folder the results go to}"
mkdir -p "$OUT"
BIN=${BIN:-$ROOT/.dev/final}
ZW=$BIN/zwrite
PY=${PYTHON:-python3}
PARTS=${PARTS:-job codecs pyramid cpu gputests}
BUDGET=${BUDGET:-520}
RESERVE=${RESERVE:-10}
FRAMES=${FRAMES:-1024}
MEDFMT_FRAMES=${MEDFMT_FRAMES:-48}
T0=$(date +%s)
W=${W:-$(mktemp -d /dev/shm/zwbench.XXXXXX)}
mkdir -p "$W"
STEPS=$W/steps.tsv
: >"$STEPS"
JOBS=$OUT/jobs.jsonl JSONL=$OUT/bench.jsonl
: >"$JOBS"
: >"$JSONL"
trap 'rm -rf "$W"' EXIT
exec > >(tee -a "$OUT/bench.log") 2>&1
. "$ROOT/scripts/device/lib.sh"
BIN=$(unpack_bin "$BIN" "$W/bin")
ZW=$BIN/zwrite
export ZW

has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# The orca2 geometry (scripts/peer/scenarios.py): frames of 2x2048x2304
# uint16, chunks 32x1x64x64, shards of 640 frames.
GEO=(--shape 0,2,2048,2304 --dtype uint16 --chunk 32,1,64,64 --shard 640,2,512,576)
# The camera file's geometry (issue 12): 2048x2048 uint16 frames, chunks
# 64x256x256, shards of 256 whole frames (tsjob spells it out: functions
# run in a child bash, which does not see arrays).
CGEO=(--shape 0,2048,2048 --dtype uint16 --chunk 64,256,256 --shard 256,2048,2048)
CAM=$W/camera.raw
export ROOT ZW PY W JOBS JSONL CAM

# job NAME STORE INPUT_BYTES CMD...: runs CMD (a whole process, start-up
# and exit included) under `time`, then writes a zwrite-job/1 record: the
# command, wall/user/sys seconds, max RSS, input and stored bytes, input
# GB/s over wall, the ratio. STORE "-" when CMD writes no store.
job() {
	local name=$1 store=$2 inb=$3
	shift 3
	local tf=$W/time.$$
	local cmd
	# The command as typed (arguments joined by spaces; none has a space).
	cmd="$*"
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -o "$tf" -f '%e %U %S %M' "$@"
	else
		# time's report to the file, the command's stderr where it was.
		local TIMEFORMAT='%R %U %S -1'
		{ time "$@" 2>&3; } 3>&2 2>"$tf"
	fi
	local rc=$?
	local stored=0
	[ "$store" != - ] && [ -e "$store" ] && stored=$(du -sb "$store" | cut -f1)
	"$PY" - "$name" "$cmd" "$rc" "$inb" "$stored" "$(tail -1 "$tf")" "$JOBS" <<'PY'
import json, socket, sys
name, cmd, rc, inb, stored, t, path = sys.argv[1:8]
wall, user, sys_s, rss = (float(x) for x in t.split())
inb, stored = int(inb), int(stored)
r = {"schema": "zwrite-job/1", "name": name, "host": socket.gethostname(), "command": cmd.strip(),
     "rc": int(rc), "wall_s": wall, "user_s": user, "sys_s": sys_s,
     "max_rss_kib": int(rss), "input_bytes": inb, "stored_bytes": stored,
     "input_gbps": inb / wall / 1e9 if wall > 0 and int(rc) == 0 else 0,
     "ratio": inb / stored if stored else None}
open(path, "a").write(json.dumps(r) + "\n")
print(f"job {name}: rc {rc}, {wall:.2f} s wall ({user:.1f} user, {sys_s:.1f} sys), "
      f"{r['input_gbps']:.2f} GB/s" + (f", ratio {r['ratio']:.3f}" if stored else ""))
PY
	rm -f "$tf"
	return $rc
}

# zjob NAME STORE ARGS...: job of `zwrite append INPUT -o STORE ARGS` on
# the camera file, the store removed afterwards (keeps tmpfs free).
zjob() {
	local name=$1 store=$2
	shift 2
	rm -rf "$store"
	job "$name" "$store" "$(stat -c %s "$CAM")" "$ZW" append "$CAM" -o "$store" "$@"
	local rc=$?
	rm -rf "$store"
	return $rc
}

# tsjob NAME CODEC [tensorstore_bench args]: tensorstore writing the camera
# file (its geometry) into a file kvstore on tmpfs, one shard row per
# write, as a job (whole process) and a bench record.
tsjob() {
	local name=$1 codec=$2
	shift 2
	rm -rf "$W/ts"
	job "$name" "$W/ts" "$(stat -c %s "$CAM")" "$PY" "$ROOT/scripts/peer/tensorstore_bench.py" \
		--shape 0,2048,2048 --chunk 64,256,256 --shard 256,2048,2048 --codec "$codec" --input "$CAM" --kvstore "file:$W/ts" --json "$W/rec.json" "$@"
	local rc=$?
	[ -s "$W/rec.json" ] && jsonl "$W/rec.json"
	rm -rf "$W/ts" "$W/rec.json"
	return $rc
}

# jsonl FILE: FILE's record(s) appended to bench.jsonl, one per line.
jsonl() {
	"$PY" -c '
import json, sys
text = open(sys.argv[1]).read().strip()
recs = []
try:
    d = json.loads(text)
    recs = d if isinstance(d, list) else [d]
except ValueError:  # JSON lines
    recs = [json.loads(l) for l in text.splitlines() if l.strip()]
with open(sys.argv[2], "a") as f:
    for r in recs:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")' "$1" "$JSONL"
}

# zb ARGS...: zwrite bench ARGS --json, the record(s) kept.
zb() {
	rm -f "$W/zb.json"
	${ZWPRE:-} "$ZW" bench --progress=false --json "$W/zb.json" "$@"
	local rc=$?
	[ -s "$W/zb.json" ] && jsonl "$W/zb.json"
	return $rc
}

# tsb ARGS...: tensorstore_bench.py ARGS --json, the record(s) kept.
tsb() {
	rm -f "$W/tsb.json"
	"$PY" "$ROOT/scripts/peer/tensorstore_bench.py" --json "$W/tsb.json" "$@"
	local rc=$?
	[ -s "$W/tsb.json" ] && jsonl "$W/tsb.json"
	return $rc
}

# pipejob NAME STORE|- CMD-STRING: a job of `bash -c CMD` (a pipeline).
pipejob() {
	local name=$1 store=$2
	rm -rf "$store"
	job "$name" "$store" "$(stat -c %s "$CAM")" bash -c "set -o pipefail; $3"
	local rc=$?
	[ "$store" != - ] && rm -rf "$store"
	return $rc
}
export -f job zjob tsjob jsonl zb tsb pipejob

echo "bench.sh: $(date -u +%FT%TZ) on $(hostname), parts: $PARTS, budget $BUDGET s, work $W"
nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv,noheader
"$ZW" version
"$PY" -c 'import numpy, tensorstore; from importlib.metadata import version; print("tensorstore", version("tensorstore"), "numpy", numpy.__version__)'
echo "cores $(nproc), $(free -g | awk '/^Mem:/ { print $2 " GiB RAM" }'), /dev/shm $(df -h /dev/shm | awk 'NR==2 { print $4 }') free"

if has job || has pyramid || has bzstd; then
	step "camera file ($FRAMES frames)" 60 bash -c '"$ZW" synth --shape '"$FRAMES"',2048,2048 --dtype uint16 --fill camera >"$CAM"'
	ls -l "$CAM"
	# Touch the memory a run will use once (the machine maps memory as it
	# is first touched): one untimed run writing a store as large as the
	# ones timed below, removed after.
	step "warm-up run" 60 bash -c '"$ZW" append "$CAM" -o "$W/warm.zarr" '"${CGEO[*]}"' --codec none --backend gpu >/dev/null; rm -rf "$W/warm.zarr"'
fi

# ---- issue 12: the real job ------------------------------------------------
if has job; then
	for i in 1 2; do
		step "append gpu zstd #$i" 60 zjob "append gpu zstd #$i" "$W/a.zarr" "${CGEO[@]}" --codec zstd --backend gpu --verbose
	done
	step "tensorstore zstd" 120 tsjob "tensorstore zstd" zstd
	step "append cpu lz4" 60 zjob "append cpu lz4" "$W/a.zarr" "${CGEO[@]}" --codec lz4 --backend cpu --verbose
	step "append cpu lz4 #2" 60 zjob "append cpu lz4 #2" "$W/a.zarr" "${CGEO[@]}" --codec lz4 --backend cpu
	step "tensorstore blosc-lz4" 120 tsjob "tensorstore blosc-lz4 byte" lz4 --shuffle byte
	for sh in byte bit; do
		step "append gpu blosc-zstd $sh" 60 zjob "append gpu blosc-zstd $sh" "$W/a.zarr" "${CGEO[@]}" --codec blosc-zstd --shuffle $sh --backend gpu
		step "tensorstore blosc-zstd $sh" 150 tsjob "tensorstore blosc-zstd $sh" blosc-zstd --shuffle $sh
	done
	step "append cpu zstd" 90 zjob "append cpu zstd" "$W/a.zarr" "${CGEO[@]}" --codec zstd --backend cpu
	step "append cpu blosc-zstd byte" 90 zjob "append cpu blosc-zstd byte" "$W/a.zarr" "${CGEO[@]}" --codec blosc-zstd --shuffle byte --backend cpu

	# The output file system's write ceiling for the store's files: as
	# many files as the store has shards (4), written at once by one dd
	# each (1.2 GB apiece: the store's size), to fresh tmpfs pages.
	step "write 4 files at once" 60 job "dd of=4 files x 1.2 GB at once (tmpfs)" - $((4 * 72 << 24)) bash -c "for i in 0 1 2 3; do dd if=/dev/zero of=$W/wc\$i bs=16M count=72 status=none & done; wait; rm -f $W/wc*"
	step "write 1 file" 60 job "dd of=1 file x 1.2 GB (tmpfs)" - $((72 << 24)) bash -c "dd if=/dev/zero of=$W/wc bs=16M count=72 status=none; rm -f $W/wc"

	# One frame, no JIT cache: start-up as a user's first run sees it.
	"$ZW" synth --shape 1,2048,2048 --dtype uint16 --fill camera >"$W/one.raw"
	for i in 1 2 3; do
		rm -rf "$W/one.zarr"
		step "one frame gpu #$i" 30 job "one frame gpu CUDA_CACHE_DISABLE=1 #$i" "$W/one.zarr" "$(stat -c %s "$W/one.raw")" \
			env CUDA_CACHE_DISABLE=1 "$ZW" append "$W/one.raw" -o "$W/one.zarr" "${CGEO[@]}" --codec zstd --backend gpu --verbose
	done
	rm -rf "$W/one.zarr" "$W/one.raw"

	# A pipe: dd | zwrite append - against dd | dd on the same bytes.
	step "dd | dd" 60 pipejob "dd bs=16M | dd bs=16M of=/dev/null" - "dd if=$CAM bs=16M status=none | dd bs=16M of=/dev/null status=none"
	step "dd | zwrite gpu zstd" 60 pipejob "dd bs=16M | zwrite append - (gpu zstd)" "$W/p.zarr" "dd if=$CAM bs=16M status=none | $ZW append - -o $W/p.zarr ${CGEO[*]} --codec zstd --backend gpu"
	step "dd | dd #2" 60 pipejob "dd bs=16M | dd bs=16M of=/dev/null #2" - "dd if=$CAM bs=16M status=none | dd bs=16M of=/dev/null status=none"
	step "dd | zwrite gpu none" 60 pipejob "dd bs=16M | zwrite append - (gpu none)" "$W/p.zarr" "dd if=$CAM bs=16M status=none | $ZW append - -o $W/p.zarr ${CGEO[*]} --codec none --backend gpu"

	# The same path as append with the machine's I/O ceilings beside it.
	rm -rf "$W/bi.zarr"
	step "bench --input gpu zstd" 90 zb --input "$CAM" -o "$W/bi.zarr" "${CGEO[@]}" --codec zstd --backend gpu
	rm -rf "$W/bi.zarr"
	# bench -o a tmpfs directory vs the discard sink (camera fill, prefill).
	for s in discard dir; do
		o=()
		[ $s = dir ] && o=(-o "$W/bo.zarr")
		rm -rf "$W/bo.zarr"
		step "bench prefill gpu zstd $s" 60 zb --scenario orca2 --fill camera --prefill --frames 1280 --codec zstd --backend gpu "${o[@]}"
	done
	rm -rf "$W/bo.zarr"
fi

# ---- issue 13: GPU blosc-zstd end to end, beside tensorstore's ratio ----------
if has bzstd; then
	BZ=(--codec blosc-zstd --shuffle byte)
	step "bzstd warm-up" 60 "$ZW" bench --progress=false --scenario orca2 --fill camera --prefill --frames 320 "${BZ[@]}" --backend gpu --baselines=false
	for i in 1 2 3; do
		step "bzstd prefill gpu #$i" 60 zb --scenario orca2 --fill camera --prefill --frames 1280 "${BZ[@]}" --backend gpu --baselines=false
	done
	"$ZW" synth --shape 32,2,2048,2304 --dtype uint16 --fill camera >"$W/epoch-camera.raw"
	step "tensorstore blosc-zstd byte camera fill" 120 tsb --scenario orca2 --fill camera --raw "$W/epoch-camera.raw" --frames 640 --codec blosc-zstd --shuffle byte
	rm -f "$W/epoch-camera.raw"
	for i in 1 2; do
		step "append gpu blosc-zstd byte #$i" 60 zjob "append gpu blosc-zstd byte #$i" "$W/a.zarr" "${CGEO[@]}" "${BZ[@]}" --backend gpu
	done
	step "append cpu blosc-zstd byte" 90 zjob "append cpu blosc-zstd byte" "$W/a.zarr" "${CGEO[@]}" "${BZ[@]}" --backend cpu
	step "tensorstore blosc-zstd byte file" 150 tsjob "tensorstore blosc-zstd byte" blosc-zstd --shuffle byte
fi

# ---- issue 14: pyramid cost ----------------------------------------------------
if has pyramid; then
	for i in 1 2; do
		step "pyramid none #$i" 60 zjob "append gpu zstd, no levels #$i" "$W/y.zarr" "${CGEO[@]}" --codec zstd --backend gpu --dims t,y,x
		step "pyramid 4 #$i" 90 zjob "append gpu zstd, 4 levels mean #$i" "$W/y.zarr" "${CGEO[@]}" --codec zstd --backend gpu --dims t,y,x --levels 4
	done
	step "pyramid cpu none" 90 zjob "append cpu zstd, no levels" "$W/y.zarr" "${CGEO[@]}" --codec zstd --backend cpu --dims t,y,x
	step "pyramid cpu 4" 120 zjob "append cpu zstd, 4 levels mean" "$W/y.zarr" "${CGEO[@]}" --codec zstd --backend cpu --dims t,y,x --levels 4
	# The orca2 thirds fill as a file, the same two runs.
	rm -f "$CAM"
	step "thirds file" 60 bash -c '"$ZW" synth --shape '"$((FRAMES * 4 / 9))"',2,2048,2304 --dtype uint16 --fill thirds >"$CAM"'
	step "pyramid thirds none" 60 zjob "append gpu zstd thirds, no levels" "$W/y.zarr" "${GEO[@]}" --codec zstd --backend gpu --dims t,c,y,x
	step "pyramid thirds 4" 90 zjob "append gpu zstd thirds, 4 levels mean" "$W/y.zarr" "${GEO[@]}" --codec zstd --backend gpu --dims t,c,y,x --levels 4
fi
rm -f "$CAM"

# ---- issue 13: codecs per fill, backend and level -------------------------------
if has codecs; then
	for fill in camera thirds rand; do
		step "codecs all $fill" 120 zb --scenario orca2 --fill $fill --prefill --frames ${CODEC_FRAMES:-160} --codecs all
	done
	for lv in ${CODEC_LEVELS:-3}; do
		step "codecs level $lv camera" 90 zb --scenario orca2 --fill camera --prefill --frames ${CODEC_FRAMES:-160} --codecs zstd,blosc-zstd:byte,blosc-zstd:bit,lz4:byte --level $lv
	done
	"$ZW" synth --shape 32,2,2048,2304 --dtype uint16 --fill camera >"$W/epoch-camera.raw"
	for fill in camera thirds rand; do
		src=(--fill $fill)
		[ $fill = camera ] && src=(--fill camera --raw "$W/epoch-camera.raw")
		step "tensorstore zstd $fill" 90 tsb --scenario orca2 "${src[@]}" --frames 640 --codec zstd
	done
	for sh in byte bit; do
		step "tensorstore blosc-zstd $sh camera" 90 tsb --scenario orca2 --fill camera --raw "$W/epoch-camera.raw" --frames 640 --codec blosc-zstd --shuffle $sh
	done
	step "tensorstore blosc-lz4 byte camera" 90 tsb --scenario orca2 --fill camera --raw "$W/epoch-camera.raw" --frames 640 --codec lz4 --shuffle byte
	rm -f "$W/epoch-camera.raw"
fi

# ---- issue 15: the CPU backend ------------------------------------------------
if has touch; then
	step "touch ${TOUCH_GB:-48} GB" 90 "$PY" -c 'import numpy as np, sys; a = np.ones(int(sys.argv[1]) << 30, np.uint8); print(int(a[::1 << 20].sum()), "MiB touched")' "${TOUCH_GB:-48}"
fi
if has scatter; then
	# The scatter kernels alone, one core and all cores at once (lanes1,
	# lanesN: each lane its own input and staging), every kernel step the
	# CPU has, memmove and plain stores beside them: the per-core copy rate under
	# load that bounds the CPU stage's end to end over the codec ceiling.
	# cpu.old, when build.sh was given one, is the same benchmark built
	# against an earlier kernel: an A/B in one run.
	for t in cpu.test cpu.old; do
		[ -x "$BIN/$t" ] || continue
		step "scatter $t" 90 bash -c '"$0" -test.run XXX -test.bench Scatter -test.benchtime 5x | tee "$1"' "$BIN/$t" "$OUT/scatter-$t.txt"
	done
fi
if has prof; then
	step "prof cpu medfmt zstd" 60 zb --scenario medfmt --codec zstd --backend cpu --prefill --frames "$MEDFMT_FRAMES" --cpuprofile "$OUT/prof-medfmt-zstd.pprof"
	step "prof cpu orca2 lz4" 60 zb --scenario orca2 --codec lz4 --backend cpu --prefill --frames 1280 --cpuprofile "$OUT/prof-orca2-lz4.pprof"
fi
if has cpu; then
	for scen in medfmt orca2; do
		zf=$([ $scen = medfmt ] && echo "$MEDFMT_FRAMES" || echo 1280)
		tf=$([ $scen = medfmt ] && echo 24 || echo 640)
		for c in zstd lz4; do
			step "cpu $scen $c" 60 zb --scenario $scen --codec $c --backend cpu --prefill --frames $zf
			step "tensorstore $scen $c" 90 tsb --scenario $scen --codec $c --frames $tf
		done
	done
	for c in lz4 blosc-zstd zstd; do
		rm -rf "$W/cd.zarr"
		step "cpu orca2 $c tmpfs dir" 60 zb --scenario orca2 --codec $c --backend cpu --prefill --frames 1280 -o "$W/cd.zarr"
	done
	rm -rf "$W/cd.zarr"
fi

# The CPU zstd ratio against tensorstore's on the same frame count as its
# codecs steps (640 frames of the same epochs: the same shard rows).
if has zratio; then
	for fill in ${ZRATIO_FILLS:-camera thirds rand}; do
		step "cpu zstd 640 $fill" 40 zb --scenario orca2 --fill $fill --prefill --frames 640 --codec zstd --backend cpu --baselines=false
	done
fi
# zratio_ts: tensorstore's zstd level 1 on the same frames, for ZRATIO_FILLS
# that numpy makes (the same run as zratio's).
if has zratio_ts; then
	for fill in ${ZRATIO_FILLS:-thirds rand}; do
		step "tensorstore zstd 640 $fill" 90 tsb --scenario orca2 --fill $fill --frames 640 --codec zstd
	done
fi

# depth: the CPU backend on medfmt (48 frames, where 1.2 GB epochs make the
# slots' first touch a large part of a short run) at depth 2 and 3, with
# tensorstore's zstd beside it.
if has depth; then
	for c in zstd lz4; do
		for d in 2 3; do
			step "cpu medfmt $c depth $d" 60 zb --scenario medfmt --codec $c --backend cpu --prefill --frames 48 --depth $d
		done
	done
	step "tensorstore medfmt zstd" 90 tsb --scenario medfmt --codec zstd --frames 24
fi

if has cpuz; then
	for rep in 1 2; do
		for scen in medfmt orca2; do
			zf=$([ $scen = medfmt ] && echo "$MEDFMT_FRAMES" || echo 1280)
			for c in zstd lz4; do
				step "cpuz $scen $c #$rep" 40 zb --scenario $scen --codec $c --backend cpu --prefill --frames $zf
			done
		done
	done
fi

# ---- issue 17: bench -o s3:// against a local server -----------------------------
if has s3; then
	if [ -x "$BIN/versitygw" ]; then
		cp "$BIN/versitygw" "$W/versitygw"
		mkdir -p "$W/s3root/bkt"
		"$W/versitygw" --port 127.0.0.1:7070 --access zwrite --secret zwrite-secret --region us-east-1 --quiet posix "$W/s3root" >"$W/versitygw.log" 2>&1 &
		VGW=$!
		for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/7070) 2>/dev/null && break; sleep 0.1; done
		export AWS_ACCESS_KEY_ID=zwrite AWS_SECRET_ACCESS_KEY=zwrite-secret AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:7070
		# Each step leaves the sink's and the ceiling's request trace
		# (ZWRITE_S3_TRACE) in $OUT/s3trace-NAME.txt: where the upload's
		# time goes (parts in flight, pool waits, completes) on both.
		s3b() {
			local name=$1
			shift
			rm -f "$OUT/s3trace-$name.txt"
			export ZWRITE_S3_TRACE=$OUT/s3trace-$name.txt
			step "bench s3 $name" 120 zb --scenario orca2 --fill camera --prefill "$@" -o s3://bkt/o-$name.zarr
			unset ZWRITE_S3_TRACE
			rm -rf "$W/s3root/bkt/o-$name.zarr"
		}
		for be in gpu cpu; do
			s3b "$be-lz4" --frames 640 --codec lz4 --backend $be
		done
		s3b gpu-zstd --frames 640 --codec zstd --backend gpu
		# No codec: the upload alone sets the rate; two shard rows: a row's
		# commit while the next row streams.
		s3b gpu-none --frames 640 --codec none --backend gpu
		s3b gpu-lz4-2rows --frames 1280 --codec lz4 --backend gpu
		kill $VGW; wait $VGW 2>/dev/null
		tail -5 "$W/versitygw.log"
		# The server on cores of its own (as a remote one would be: here
		# it shares the 16 cores with the CPU backend's compression, which
		# the ceiling does not do), zwrite and its ceiling on the others.
		if command -v taskset >/dev/null && [ "$(nproc)" -ge 8 ]; then
			half=$(($(nproc) / 2))
			taskset -c "$half-$(($(nproc) - 1))" "$W/versitygw" --port 127.0.0.1:7070 --access zwrite --secret zwrite-secret --region us-east-1 --quiet posix "$W/s3root" >"$W/versitygw.log" 2>&1 &
			VGW=$!
			for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/7070) 2>/dev/null && break; sleep 0.1; done
			ZWPRE="taskset -c 0-$((half - 1))"
			for be in cpu gpu; do
				s3b "$be-lz4-split" --frames 640 --codec lz4 --backend $be
			done
			ZWPRE=
			kill $VGW; wait $VGW 2>/dev/null
		fi
		rm -rf "$W/s3root" "$W/versitygw"
	else
		skip "bench s3" "no versitygw in $BIN"
	fi
fi

# ---- GPU tests -------------------------------------------------------------------
if has gputests; then
	(cd internal/gpu && step "gpu tests" 150 bash -c '"$0" -test.v -test.count=1 -test.run "$2" -test.timeout 140s >"$1" 2>&1' "$BIN/gpu.test" "$OUT/gpu-tests.log" "${GPURUN:-Conformance|BloscZstdGPU|ZstdGPUDeterministic|Emulator|Stage}")
	echo "gpu tests: $(grep -c -- '--- PASS' "$OUT/gpu-tests.log") passed, $(grep -c -- '--- FAIL' "$OUT/gpu-tests.log") failed, $(grep -c -- '--- SKIP' "$OUT/gpu-tests.log") skipped"
	grep -- '^--- FAIL\|^    --- FAIL\|^panic\|^FAIL\|^ok\|^PASS' "$OUT/gpu-tests.log" | head -30
	grep -- '--- SKIP' "$OUT/gpu-tests.log" | head -10
fi

{
	echo "bench.sh summary: $(date -u +%FT%TZ), $(elapsed) s of $BUDGET s"
	"$PY" "$ROOT/scripts/device/bench_summary.py" "$JSONL" 2>&1 || echo "(no bench summary)"
	echo
	"$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    ratio = "%.3f" % r["ratio"] if r["ratio"] else "-"
    print("%-48s rc %d %7.2f s %7.1f u %6.1f s %7.2f GB/s ratio %s" % (r["name"], r["rc"], r["wall_s"], r["user_s"], r["sys_s"], r["input_gbps"], ratio))' "$JOBS"
	echo
	steps_summary
} >"$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
exec >&- 2>&-
sleep 1
