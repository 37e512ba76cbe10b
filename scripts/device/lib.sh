# lib.sh: helpers shared by the GPU machine's scripts (final.sh, bench.sh).
# Source it after setting T0 (start time), BUDGET and RESERVE (seconds) and
# STEPS (a TSV file the steps are recorded in).

elapsed() { echo $(($(date +%s) - T0)); }

# step NAME CAP CMD...: runs CMD under timeout (CAP seconds, less when the
# budget is nearly spent), logs and records its status; never fails the
# script. Returns CMD's status.
step() {
	local name=$1 cap=$2
	shift 2
	local left=$((BUDGET - RESERVE - $(elapsed)))
	if ((left < 5)); then
		echo "=== SKIP $name: out of time ($(elapsed) s of $BUDGET s used)"
		printf '%s\tskip\t-\t0\n' "$name" >>"$STEPS"
		return 125
	fi
	local lim=$((cap < left ? cap : left))
	echo "=== [$(elapsed) s] $name (limit $lim s)"
	local t=$(date +%s.%N)
	# bash -c: CMD may be one of the caller's exported functions.
	timeout -k 5 "$lim" bash -c 'set -o pipefail; "$@"' _ "$@"
	local rc=$?
	local dur
	dur=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	local st=ok
	((rc == 124 || rc == 137)) && st=TIMEOUT
	((rc != 0 && rc != 124 && rc != 137)) && st=FAIL
	echo "=== $st $name (rc $rc, $dur s)"
	printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$rc" "$dur" >>"$STEPS"
	return $rc
}

# skip NAME WHY: records a step that cannot run here.
skip() {
	echo "=== SKIP $1: $2"
	printf '%s\tskip\t-\t0\n' "$1" >>"$STEPS"
}

# steps_summary: one line per recorded step and the counts.
steps_summary() {
	echo "steps: $(grep -c $'\tok\t' "$STEPS") ok, $(grep -c $'\tFAIL\t' "$STEPS") failed, $(grep -c $'\tTIMEOUT\t' "$STEPS") timed out, $(grep -c $'\tskip\t' "$STEPS") skipped"
	awk -F'\t' '{ printf "  %-8s %6s s  rc %-3s %s\n", $2, $4, $3, $1 }' "$STEPS"
}

# unpack_bin DIR DEST: DIR's *.xz (build.sh packs the binaries) unpacked
# into DEST, executable, plain files copied; prints DEST. python3's lzma,
# since the GPU machine may lack xz.
unpack_bin() {
	local dir=$1 dest=$2 f
	mkdir -p "$dest"
	for f in "$dir"/*; do
		case $f in
		*.xz) python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$dest/$(basename "${f%.xz}")" ;;
		*) cp "$f" "$dest/" ;;
		esac
	done
	chmod +x "$dest"/* 2>/dev/null
	echo "$dest"
}
