#!/usr/bin/env bash
# build.sh: build what scripts/device/final.sh runs on the GPU machine (it
# has no Go) into .dev/final/ (git-ignored; the run tool carries it with
# carry [".dev/final"]): the zwrite binary and the internal/gpu test binary.
# Usage (repository root, e.g. /work/main): scripts/device/build.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dst=${DST:-.dev/final}
mkdir -p "$dst"
# cgo on: NVML discovery (go-nvml) needs it; CUDA itself goes through purego.
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
CGO_ENABLED=1 go build -ldflags "-X main.version=$version" -o "$dst/zwrite" ./cmd/zwrite
CGO_ENABLED=1 go test -c -o "$dst/gpu.test" ./internal/gpu
"$dst/zwrite" version
ls -l "$dst"
git log -1 --format='built from %h %s' 2>/dev/null || true
