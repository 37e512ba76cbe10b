#!/usr/bin/env python3
"""Write a zwrite bench scenario with tensorstore's zarr3 driver.

The peer baseline for `zwrite bench`: the same array (shape, chunk, shard,
codec, fill, frames), written the way a Python user would write frames
with tensorstore: whole shard rows at a time (tensorstore's docs advise
writes aligned to shards, since a partial shard write re-reads and rewrites
the shard), a few writes in flight, default context (all cores).

Data: with --raw FILE the first epoch (chunk[0] frames) comes from a file
made by `zwrite synth` (exact same bytes as zwrite's fill); otherwise numpy
computes the same fill (see internal/bench/fill.go; --check-fill RAW
compares the two). Like `zwrite bench --prefill`, one epoch is made once
and cycled: every shard row is written from the same buffer, so only the
writer is timed.

The camera fill has no numpy port: its frames always come from a file made
by `zwrite synth --fill camera` (--raw for one epoch, or --input for a whole
file). One implementation of the scene and its noise, in Go, is what both
sides then write: nothing to keep bit-exact in step, and the zwrite binary
is on every machine this script runs on, since it is what is compared.

With --input FILE the whole raw file is the array, as `zwrite append FILE`
writes it: shape[1:] from --shape or the scenario, frames = file size /
frame bytes; the file is memory-mapped and written one whole shard row per
write (the last row may be partial). The file is read as the OS has it
cached (on tmpfs, from memory), like zwrite's read of the same file.

The output goes to tensorstore's memory kvstore (it has no discard
kvstore) unless --kvstore file:DIR is given; output bytes are summed from
the kvstore after the timed part.

Prints a one-screen table on stderr and, with --json FILE|-, a record in
zwrite's bench schema (tool: "tensorstore").
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import socket
import sys
import time
from collections import deque

import numpy as np

SCHEMA = "zwrite-bench/1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenarios import SCENARIOS  # noqa: E402  (the same table as zwrite's)

DTYPES = {
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "float32": np.float32, "float64": np.float64,
}

# ---- fills: the same values as internal/bench/fill.go ----------------------

SEED_RAND = np.uint64(0x5EED00012A3B4C5D)
SEED_THIRDS = np.uint64(0x5EED00026E7F8091)
U = np.uint64


def _ts_version():
    """tensorstore's version from the installed distribution (the module has
    no __version__ attribute)."""
    try:
        from importlib.metadata import version
        return version("tensorstore")
    except Exception:  # not installed as a distribution: unknown
        return "?"


def mix(z):
    """splitmix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = z + U(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
    return z ^ (z >> U(31))


def rand_value(idx):
    return (mix((idx >> U(2)) ^ SEED_RAND) >> (U(16) * (idx & U(3)))) & U(0xFFF)


def noise_value(idx):
    b = mix((idx >> U(1)) ^ SEED_THIRDS) >> (U(32) * (idx & U(1)))
    return (U(1538) + (b & U(0xFF)) + ((b >> U(8)) & U(0xFF))
            + ((b >> U(16)) & U(0xFF)) + ((b >> U(24)) & U(0xFF)))


def fill_frames(kind, shape, dtype, first, n):
    """Frames [first, first+n) of fill kind as an array of shape (n,)+shape[1:]."""
    out = np.empty((n,) + tuple(shape[1:]), dtype=dtype)
    if kind == "zeros":
        out.fill(0)
        return out
    rank = len(shape)
    if rank == 1:
        t = np.arange(first, first + n, dtype=np.uint64)
        if kind == "xor":
            v = t
        elif kind == "rand":
            v = rand_value(t)
        else:  # thirds: bands repeat every 3*4096 elements
            band = (t // U(4096)) % U(3)
            v = np.where(band == 0, noise_value(t), np.where(band == 1, t & U(0xFFF), U(0)))
        out[:] = v.astype(dtype)
        return out
    row_len = shape[-1]
    outer = tuple(shape[1:-1])  # dims between dim 0 and the last
    rows_per_frame = int(np.prod(outer)) if outer else 1
    frame_elems = rows_per_frame * row_len
    x = np.arange(row_len, dtype=np.uint64)
    flat = out.reshape(n, rows_per_frame, row_len)
    block = max(1, (8 << 20) // row_len)  # rows per step: ~8M elements
    for f in range(n):
        t = first + f
        for r0 in range(0, rows_per_frame, block):
            r1 = min(rows_per_frame, r0 + block)
            r = np.arange(r0, r1, dtype=np.int64)
            coords = np.unravel_index(r, outer) if outer else ()
            idx0 = U(t * frame_elems) + r.astype(np.uint64)[:, None] * U(row_len)
            idx = idx0 + x[None, :]
            if kind == "xor":
                rx = np.full(r1 - r0, t, dtype=np.uint64)
                for c in coords:
                    rx ^= c.astype(np.uint64)
                v = rx[:, None] ^ x[None, :]
            elif kind == "rand":
                v = rand_value(idx)
            elif kind == "thirds":
                rs = np.full(r1 - r0, t, dtype=np.uint64)
                for c in coords:
                    rs += c.astype(np.uint64)
                grad = (rs[:, None] + x[None, :]) & U(0xFFF)
                if rank >= 3:
                    # Bands along the second-to-last axis (the last outer dim).
                    band = (coords[-1].astype(np.int64) * 3) // shape[-2]
                    band = band[:, None]
                else:
                    band = ((x.astype(np.int64) * 3) // shape[-1])[None, :]
                v = np.where(band == 0, noise_value(idx), np.where(band == 1, grad, U(0)))
            else:
                raise SystemExit(f"unknown fill {kind!r} (want xor, zeros, rand or thirds)")
            flat[f, r0:r1] = v.astype(dtype)
    return out


# ---- store spec ------------------------------------------------------------

SHUFFLES = {"byte": "shuffle", "bit": "bitshuffle", "none": "noshuffle"}
BLOSC_CNAMES = {"lz4": "lz4", "blosc-zstd": "zstd"}


def codec_chain(codec, level, itemsize, shuffle="byte"):
    chain = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if codec == "zstd":
        chain.append({"name": "zstd", "configuration": {"level": level, "checksum": False}})
    elif codec in BLOSC_CNAMES:
        chain.append({"name": "blosc", "configuration": {
            "cname": BLOSC_CNAMES[codec], "clevel": level, "shuffle": SHUFFLES[shuffle],
            "typesize": itemsize, "blocksize": 0}})
    elif codec != "none":
        raise SystemExit(f"unknown codec {codec!r} (want zstd, lz4, blosc-zstd or none)")
    return chain


def store_spec(shape, chunk, shard, dims, dtype_name, codec, level, kvstore, shuffle="byte"):
    itemsize = np.dtype(DTYPES[dtype_name]).itemsize
    if kvstore == "memory":
        kv = {"driver": "memory"}
    elif kvstore.startswith("file:"):
        kv = {"driver": "file", "path": kvstore[len("file:"):]}
    else:
        raise SystemExit(f"--kvstore {kvstore!r}: want memory or file:DIR")
    meta = {
        "shape": shape,
        "data_type": dtype_name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shard}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": chunk,
            "codecs": codec_chain(codec, level, itemsize, shuffle),
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                             {"name": "crc32c"}],
            "index_location": "end"}}],
    }
    if dims:
        meta["dimension_names"] = dims
    return {"driver": "zarr3", "kvstore": kv, "metadata": meta}


# ---- machine and baselines --------------------------------------------------

def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    import tensorstore as ts
    return {"hostname": socket.gethostname(), "os": sys.platform, "arch": platform.machine(),
            "cpu_model": model, "cores": os.cpu_count(), "mem_bytes": mem,
            "python_version": platform.python_version(), "numpy_version": np.__version__,
            "tensorstore_version": _ts_version()}


def memmove_gbps(src, want_bytes, min_s=1.0):
    """All cores copying src into a second buffer (numpy releases the GIL)."""
    flat = src.reshape(-1).view(np.uint8)[:1 << 30]  # 1 GiB is plenty
    dst = np.empty_like(flat)
    workers = os.cpu_count() or 1
    step = -(-flat.size // workers)
    parts = [(i, min(i + step, flat.size)) for i in range(0, flat.size, step)]
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        # Untimed first pass: fault in dst's pages, as zwrite's baseline does.
        list(ex.map(lambda p: np.copyto(dst[p[0]:p[1]], flat[p[0]:p[1]]), parts))
        moved, t0 = 0, time.perf_counter()
        while True:
            list(ex.map(lambda p: np.copyto(dst[p[0]:p[1]], flat[p[0]:p[1]]), parts))
            moved += flat.size
            el = time.perf_counter() - t0
            if (moved >= want_bytes and el >= min_s) or el >= 4 * min_s:
                break
    return moved / (time.perf_counter() - t0) / 1e9, moved


# ---- the run ----------------------------------------------------------------

def human(n):
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"]:
        if n < 1024 or unit == "TiB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


class Cycled:
    """Every shard row written from one buffer (the epoch repeated), as
    zwrite bench --prefill cycles its epoch."""

    def __init__(self, rowbuf, rows):
        self.rowbuf, self.rows = rowbuf, rows
        self.frames = rows * rowbuf.shape[0]
        self.nbytes = rowbuf.nbytes * rows
        self.prefill, self.label = True, None

    def row(self, r):
        return self.rowbuf

    def sample(self):
        return self.rowbuf


class FromFile:
    """A whole raw file, memory-mapped, written one shard row at a time
    (the last one may be partial), as zwrite append FILE reads it."""

    def __init__(self, path, shape, dtype, shard0):
        frame_bytes = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        size = os.path.getsize(path)
        if size == 0 or size % frame_bytes:
            raise SystemExit(f"--input {path}: {size} bytes is not a whole number of "
                             f"{frame_bytes}-byte frames of shape {shape[1:]} {np.dtype(dtype).name}")
        self.frames = size // frame_bytes
        self.mm = np.memmap(path, dtype=dtype, mode="r", shape=(self.frames,) + tuple(shape[1:]))
        self.shard0 = shard0
        self.rows = -(-self.frames // shard0)
        self.nbytes = size
        self.prefill, self.label = False, path

    def row(self, r):
        return self.mm[r * self.shard0:(r + 1) * self.shard0]

    def sample(self):
        # The memmove baseline copies a RAM buffer of one shard row.
        return np.array(self.mm[:self.shard0])


def run_one(args, geo, codec, source, mach):
    import tensorstore as ts
    shape, chunk, shard = geo["shape"], geo["chunk"], geo["shard"]
    level = args.level if args.level is not None else (0 if codec == "none" else 1)
    kvstore = args.kvstore
    if kvstore.startswith("file:"):
        kvstore = f"{kvstore}-{args.scenario}-{codec}"
    spec = store_spec(shape, chunk, shard, geo.get("dims"), args.dtype, codec, level, kvstore,
                      args.shuffle)

    t0 = time.perf_counter()
    store = ts.open(spec, create=True, delete_existing=True).result()
    init_s = time.perf_counter() - t0

    inflight = deque()
    t0 = time.perf_counter()
    for r in range(source.rows):
        while len(inflight) >= args.inflight:
            inflight.popleft().result()
        data = source.row(r)
        inflight.append(store[r * shard[0]:r * shard[0] + data.shape[0]].write(data))
    while inflight:
        inflight.popleft().result()
    wall = time.perf_counter() - t0

    in_bytes = source.nbytes
    out_bytes = 0
    kv = store.kvstore
    for key in kv.list().result():
        k = key if isinstance(key, bytes) else key.encode()
        if k.rsplit(b"/", 1)[-1].startswith(b"zarr.json"):
            continue
        out_bytes += len(kv.read(k).result().value)

    sample = source.sample()
    mm_gbps, mm_bytes = memmove_gbps(sample, min(in_bytes, 4 << 30))
    in_gbps = in_bytes / wall / 1e9
    shuffle = args.shuffle if codec in BLOSC_CNAMES else None
    rec = {
        "schema": SCHEMA, "tool": "tensorstore",
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "command": sys.argv, "machine": mach,
        "scenario": {"name": args.scenario, "shape": shape, "chunk": chunk, "shard": shard,
                     "dtype": args.dtype, "codec": codec, "level": level,
                     "fill": "file" if source.label else args.fill,
                     "frame_bytes": in_bytes // source.frames,
                     "dimension_names": geo.get("dims")},
        "config": {"backend": "tensorstore", "depth": args.inflight,
                   "write_bytes": sample.nbytes, "prefill": source.prefill,
                   "sink": "tensorstore memory kvstore" if kvstore == "memory" else kvstore,
                   "writes": "whole shard rows, %d in flight" % args.inflight},
        "result": {"frames": source.frames, "input_bytes": in_bytes, "output_bytes": out_bytes,
                   "wall_s": wall, "init_s": init_s, "flush_s": 0.0, "fill_s": 0.0,
                   "input_gbps": in_gbps, "input_gibps": in_bytes / wall / 2**30,
                   "output_gbps": out_bytes / wall / 1e9,
                   "ratio": in_bytes / max(out_bytes, 1),
                   "producer_stall_s": 0.0},
        "stages": [],
        "baselines": {"memmove_gbps": mm_gbps, "memmove_bytes": mm_bytes,
                      "e2e_over_memmove": in_gbps / mm_gbps if mm_gbps else 0},
    }
    if shuffle:
        rec["scenario"]["shuffle"] = shuffle
    if source.prefill:
        rec["config"]["prefill_bytes"] = sample.nbytes
    else:
        rec["config"]["input"] = source.label
        rec["config"]["input_note"] = "read as the OS has the file cached"
    r = rec["result"]
    what = f"input {source.label} (as the OS has it cached)" if source.label else f"fill {args.fill}"
    print(f"tensorstore {args.scenario}  {args.dtype} {codec}{'/' + shuffle if shuffle else ''} "
          f"level {level}  {what}  whole shard rows, {args.inflight} in flight", file=sys.stderr)
    print(f"  shape {shape}  chunk {chunk}  shard {shard}  sink {rec['config']['sink']}", file=sys.stderr)
    print(f"  input   {human(in_bytes)}  {r['frames']} frames  {in_gbps:.3f} GB/s  "
          f"({r['input_gibps']:.3f} GiB/s)", file=sys.stderr)
    print(f"  output  {human(out_bytes)}  ratio {r['ratio']:.3f}  {r['output_gbps']:.3f} GB/s", file=sys.stderr)
    print(f"  wall    {wall:.3f} s  init {init_s:.3f} s", file=sys.stderr)
    print(f"  memmove, all cores  {mm_gbps:.3f} GB/s   end-to-end / memmove  "
          f"{rec['baselines']['e2e_over_memmove']:.3f}", file=sys.stderr)
    del store
    return rec


# Fills numpy computes here; camera comes only from zwrite synth files.
NUMPY_FILLS = ["xor", "zeros", "rand", "thirds"]
FILE_FILLS = ["camera"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="orca2", help="one of " + ", ".join(SCENARIOS) + " or custom")
    p.add_argument("--shape", help="custom shape, comma list (with --chunk, --shard); with --input "
                   "dim 0 is ignored (the file's size gives the frames)")
    p.add_argument("--chunk")
    p.add_argument("--shard")
    p.add_argument("--codec", default="zstd", help="zstd, lz4, blosc-zstd or none; a comma list runs each")
    p.add_argument("--shuffle", default="byte", choices=sorted(SHUFFLES),
                   help="blosc filter of lz4 and blosc-zstd (default byte)")
    p.add_argument("--level", type=int, default=None, help="zstd level / blosc clevel (default 1)")
    p.add_argument("--dtype", default="uint16", choices=sorted(DTYPES))
    p.add_argument("--fill", default="thirds", choices=NUMPY_FILLS + FILE_FILLS,
                   help="camera needs --raw or --input (a zwrite synth file)")
    p.add_argument("--frames", type=int, default=0,
                   help="frames to write, rounded up to whole shard rows (default: one shard row)")
    p.add_argument("--raw", help="first epoch's frames from this file (zwrite synth output)")
    p.add_argument("--input", metavar="FILE",
                   help="write this whole raw file as the array (as zwrite append FILE does)")
    p.add_argument("--check-fill", metavar="RAW",
                   help="compare numpy's fill of the first epoch with RAW and exit")
    p.add_argument("--inflight", type=int, default=2, help="shard-row writes in flight")
    p.add_argument("--kvstore", default="memory", help="memory (default) or file:DIR")
    p.add_argument("--json", help="write the record(s) here; - for stdout")
    p.add_argument("--json-dir", help="write each record to DIR/tensorstore-SCENARIO-CODEC.json")
    p.add_argument("--plan", action="store_true",
                   help="print what would be written (JSON: shape, frames, rows, bytes) and exit "
                   "before tensorstore is imported")
    args = p.parse_args(argv)
    if args.input and (args.raw or args.check_fill or args.frames):
        p.error("--input writes the whole file: it takes no --raw, --check-fill or --frames")
    if args.check_fill and args.fill in FILE_FILLS:
        p.error(f"--check-fill: {args.fill} has no numpy port to check; "
                f"the peer writes the zwrite synth file as it is")
    if args.fill in FILE_FILLS and not (args.raw or args.input):
        p.error(f"--fill {args.fill} has no numpy port: make its frames with "
                f"`zwrite synth --fill {args.fill}` and pass --raw FILE (one epoch) or --input FILE")
    return args


def geometry(args):
    if args.shape:
        if not (args.chunk and args.shard):
            raise SystemExit("--shape needs --chunk and --shard")
        geo = dict(shape=[int(v) for v in args.shape.split(",")],
                   chunk=[int(v) for v in args.chunk.split(",")],
                   shard=[int(v) for v in args.shard.split(",")], dims=None)
        args.scenario = "custom"
    elif args.scenario in SCENARIOS:
        geo = {k: list(v) for k, v in SCENARIOS[args.scenario].items()}
    else:
        raise SystemExit(f"unknown scenario {args.scenario!r} (want {', '.join(SCENARIOS)})")
    if not (len(geo["shape"]) == len(geo["chunk"]) == len(geo["shard"])):
        raise SystemExit("--shape, --chunk and --shard need the same number of dimensions")
    if geo["shard"][0] % geo["chunk"][0]:
        raise SystemExit("shard[0] must be a multiple of chunk[0]")
    return geo


def make_source(args, geo):
    """The data every codec's run writes, and where it came from."""
    dtype = DTYPES[args.dtype]
    shape, chunk, shard = geo["shape"], geo["chunk"], geo["shard"]
    if args.input:
        src = FromFile(args.input, shape, dtype, shard[0])
        geo["shape"] = [src.frames] + shape[1:]
        print(f"input {args.input}: {src.frames} frames of {shape[1:]} {args.dtype}, "
              f"{human(src.nbytes)} (read as the OS has it cached)", file=sys.stderr)
        return src
    epoch = chunk[0]
    # The first epoch, as zwrite --prefill makes it.
    t0 = time.perf_counter()
    if args.raw or args.check_fill:
        path = args.raw or args.check_fill
        want = epoch * int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        raw = np.fromfile(path, dtype=np.uint8, count=want)
        if raw.size != want:
            raise SystemExit(f"{path}: {raw.size} bytes, want {want} (one epoch of {epoch} frames)")
        ep = raw.view(dtype).reshape((epoch,) + tuple(shape[1:]))
        if args.check_fill:
            mine = fill_frames(args.fill, shape, dtype, 0, epoch)
            same = np.array_equal(mine.view(np.uint8), ep.view(np.uint8))
            print(f"fill {args.fill} {args.dtype} {args.scenario}: numpy "
                  f"{'matches' if same else 'DIFFERS FROM'} {path}", file=sys.stderr)
            sys.exit(0 if same else 1)
    else:
        ep = fill_frames(args.fill, shape, dtype, 0, epoch)
    fill_s = time.perf_counter() - t0

    frames = args.frames or shard[0]
    rows = -(-frames // shard[0])
    geo["shape"] = [rows * shard[0]] + shape[1:]
    if rows * shard[0] != frames:
        print(f"frames {frames} rounded up to {rows * shard[0]} (whole shard rows of {shard[0]})",
              file=sys.stderr)

    # One shard row: the epoch repeated (zwrite cycles the same epoch).
    rowbuf = np.empty((shard[0],) + tuple(shape[1:]), dtype=dtype)
    for k in range(shard[0] // epoch):
        rowbuf[k * epoch:(k + 1) * epoch] = ep
    del ep
    print(f"made data in {fill_s:.2f} s ({'raw file' if args.raw else 'numpy'}); "
          f"shard row {human(rowbuf.nbytes)}", file=sys.stderr)
    return Cycled(rowbuf, rows)


def main():
    args = parse_args()
    geo = geometry(args)
    source = make_source(args, geo)
    if args.plan:
        print(json.dumps({"shape": geo["shape"], "chunk": geo["chunk"], "shard": geo["shard"],
                          "frames": source.frames, "rows": source.rows,
                          "input_bytes": source.nbytes, "prefill": source.prefill}))
        return
    mach = machine()
    records = []
    for c in args.codec.split(","):
        rec = run_one(args, geo, c.strip(), source, mach)
        records.append(rec)
        if args.json_dir:
            # Each record as soon as it exists: a later codec that fails
            # or runs out of time does not lose the earlier ones.
            os.makedirs(args.json_dir, exist_ok=True)
            name = f"tensorstore-{rec['scenario']['name']}-{rec['scenario']['codec']}.json"
            with open(os.path.join(args.json_dir, name), "w") as f:
                f.write(json.dumps(rec, indent=2) + "\n")
    if args.json:
        text = json.dumps(records[0] if len(records) == 1 else records, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")


if __name__ == "__main__":
    main()
