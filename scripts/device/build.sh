#!/usr/bin/env bash
# build.sh: build what scripts/device/final.sh runs on the GPU machine (it
# has no Go) into .dev/final/ (git-ignored; the run tool carries it with
# carry [".dev/final"]): the zwrite binary and the internal/gpu and
# internal/cpu test binaries, packed with xz (the scripts unpack them).
# Usage (repository root, e.g. /work/main): scripts/device/build.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dst=${DST:-.dev/final}
mkdir -p "$dst"
# cgo on: NVML discovery (go-nvml) needs it; CUDA itself goes through purego.
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
# Stripped (-s -w): the run tool carries at most 64 MiB.
CGO_ENABLED=1 go build -ldflags "-s -w -X main.version=$version" -o "$dst/zwrite" ./cmd/zwrite
CGO_ENABLED=1 go test -c -ldflags "-s -w" -o "$dst/gpu.test" ./internal/gpu
# The CPU stage's tests, for bench.sh's scatter part (BenchmarkScatter).
CGO_ENABLED=1 go test -c -ldflags "-s -w" -o "$dst/cpu.test" ./internal/cpu
"$dst/zwrite" version
# Packed with xz: the run tool carries at most 64 MiB with the working
# tree (~25 MB), and versitygw alone is 80 MB. bench.sh and check.sh
# unpack what they find (python3's lzma: the GPU machine may lack xz).
# bench.sh's s3 part runs a local versitygw: the one the S3 tests built
# (internal/sink/s3/s3test caches it), when it is there.
vgw=${XDG_CACHE_HOME:-$HOME/.cache}/zwrite-test/versitygw-v1.8.0/versitygw
rm -f "$dst"/*.xz "$dst"/*.gz
if [ -x "$vgw" ]; then
	xz -T0 -6 -c "$vgw" >"$dst/versitygw.xz"
else
	echo "no $vgw: bench.sh will skip its s3 part (run the S3 tests once to build it)"
fi
for f in zwrite gpu.test cpu.test; do
	xz -T0 -6 -f "$dst/$f"
done
ls -l "$dst"
git log -1 --format='built from %h %s' 2>/dev/null || true
