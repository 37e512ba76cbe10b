# zwrite developer targets. `make demo` and `make test` work on a fresh
# clone: they install what they need themselves (Go modules through the Go
# toolchain, the interop check's npm packages through `npm ci`).

GO       ?= go
NPM      ?= npm
NODE     ?= node
FUZZTIME ?= 3s
BIN      := bin/zwrite
INTEROP  := scripts/interop
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: all build test vet fmt-check unit interop interop-deps fuzz demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/zwrite

# test: static checks, every package's tests with the race detector (the
# cmd/zwrite tests include the independent-reader interop check, which needs
# the npm packages), then a short run of every fuzz target.
test: vet fmt-check interop-deps unit fuzz

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l cmd internal)"; if [ -n "$$out" ]; then \
		echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	ZWRITE_INTEROP=require $(GO) test -race -count=1 ./...

# interop: only the independent-reader check (zarrita + numcodecs in Node)
# on stores written by the real binary.
interop: interop-deps
	ZWRITE_INTEROP=require $(GO) test -count=1 -run 'TestInterop' -v ./cmd/zwrite

interop-deps: $(INTEROP)/node_modules/.package-lock.json

$(INTEROP)/node_modules/.package-lock.json: $(INTEROP)/package-lock.json $(INTEROP)/package.json
	cd $(INTEROP) && $(NPM) ci --no-audit --no-fund --loglevel=error

# fuzz: every FuzzXxx target in the module for FUZZTIME each (the seed
# corpora also run in plain `go test`); scripts/fuzz.sh says how it
# tells the fuzz engine's own deadline race from a finding.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# demo: synthetic frames into a store under ./demo, checked three ways: our
# verify against the raw input, info, and the independent Node reader.
DEMO_SHAPE := 240,512,512
demo: build interop-deps
	mkdir -p demo
	$(BIN) synth --shape $(DEMO_SHAPE) --dtype uint16 --fill thirds > demo/frames.raw
	$(BIN) append -o demo/frames.zarr --overwrite --shape 0,512,512 --dtype uint16 \
		--chunk 8,128,128 --shard 64,512,512 --codec zstd --dims t,y,x demo/frames.raw
	$(BIN) verify demo/frames.zarr --raw demo/frames.raw
	$(BIN) info demo/frames.zarr
	$(NODE) $(INTEROP)/check.mjs demo/frames.zarr demo/frames.raw

clean:
	rm -rf bin demo $(INTEROP)/node_modules

# ptx: rebuild internal/gpu/ptx from internal/gpu/kernels/*.cu with nvcc
# (only where the CUDA toolkit exists): the PTX, cubins for sm_80, sm_86,
# sm_89, sm_90 and the newest arch of that nvcc, and ptx/cubins.txt. They
# are committed and embedded; unit tests fail when a .cu (or a .cuh it
# includes) no longer matches its PTX or cubins.
.PHONY: ptx
ptx:
	scripts/ptx.sh
