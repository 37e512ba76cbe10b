#!/usr/bin/env python3
"""Check zwrite stores with tensorstore, a second independent reader.

Usage: tensorstore_check.py STORE RAW DTYPE [STORE RAW DTYPE ...]

For each triple, opens STORE with tensorstore's zarr3 driver on a file
kvstore, reads the whole array, and compares it byte for byte with RAW: the
input zwrite was given (C order, little endian, shape = the store's shape).
DTYPE is what the store must hold (uint8..uint64, int8..int64, float32,
float64, or zwrite's short forms u16, i32, f32, ...).

Prints one line per store ("ok" or "FAIL" with the reason and, on a
difference, the first differing element and how many differ) and exits 1
when any store fails, 2 on bad usage. Needs numpy and tensorstore (the GPU
machine has both; scripts/device/final.sh runs this there).

The Node check (check.mjs, zarrita + numcodecs) is the reader `make test`
runs; this one shares no code with it nor with zwrite, so a store both
accept is readable by the tools people actually use.
"""

import json
import os
import sys
import time

import numpy as np

# zwrite's short dtype forms, as `zwrite append --dtype` accepts them.
SHORT = {
    "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
    "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "f32": "float32", "f64": "float64",
}
NAMES = {"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
         "int64", "float32", "float64"}


def _ts_version():
    """tensorstore's version from the installed distribution (the module has
    no __version__ attribute)."""
    try:
        from importlib.metadata import version
        return version("tensorstore")
    except Exception:  # not installed as a distribution: unknown
        return "?"


def parse_dtype(name):
    name = SHORT.get(name.strip().lower(), name.strip().lower())
    if name not in NAMES:
        raise ValueError(f"dtype {name!r}: want one of {', '.join(sorted(NAMES))}")
    # The raw file is little endian whatever the host.
    return name, np.dtype(name).newbyteorder("<")


def codec_names(store):
    """The codec chain from zarr.json, for the report line (best effort)."""
    try:
        with open(os.path.join(store, "zarr.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return "?"
    names = []
    for c in meta.get("codecs", []):
        if c.get("name") == "sharding_indexed":
            inner = [i.get("name", "?") for i in c.get("configuration", {}).get("codecs", [])]
            names.append("sharding(" + ",".join(inner) + ")")
        else:
            names.append(c.get("name", "?"))
    return "+".join(names) or "?"


def first_difference(got, want, shape, itemsize):
    """Index, values and count of differing elements of two byte arrays."""
    g = got.reshape(-1, itemsize)
    w = want.reshape(-1, itemsize)
    bad = np.flatnonzero((g != w).any(axis=1))
    i = int(bad[0])
    idx = tuple(int(v) for v in np.unravel_index(i, shape)) if shape else ()
    return idx, bytes(g[i]).hex(), bytes(w[i]).hex(), int(bad.size)


def check(ts, store, raw, dtype_arg):
    """Returns (ok, message) for one store."""
    name, want_dt = parse_dtype(dtype_arg)
    path = os.path.abspath(store)
    if not os.path.isfile(os.path.join(path, "zarr.json")):
        return False, f"no zarr.json in {path}"
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": path + "/"}}
    t0 = time.perf_counter()
    arr = ts.open(spec, open=True, read=True).result()
    have = arr.dtype.numpy_dtype
    if have.name != name:
        return False, f"store dtype {have.name}, want {name}"
    shape = tuple(int(v) for v in arr.domain.shape)
    origin = tuple(int(v) for v in arr.domain.origin)
    if any(origin):
        return False, f"domain origin {origin}, want all zeros"
    data = np.ascontiguousarray(arr.read().result())
    read_s = time.perf_counter() - t0
    if data.shape != shape:
        return False, f"read shape {data.shape}, store shape {shape}"

    want = np.fromfile(raw, dtype=np.uint8)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    size = n * want_dt.itemsize
    if want.size != size:
        return False, (f"raw {raw} has {want.size} bytes, the store's shape {list(shape)} "
                       f"of {name} is {size} bytes")
    got = data.astype(want_dt, copy=False).view(np.uint8).reshape(-1)
    if not np.array_equal(got, want):
        idx, g, w, count = first_difference(got, want, shape, want_dt.itemsize)
        return False, (f"{count} of {n} elements differ; first at {list(idx)}: "
                       f"store {g}, raw {w} (little-endian hex)")
    return True, (f"shape {list(shape)} {name} {codec_names(path)}  {size} bytes equal to {raw}"
                  f"  (read {read_s:.2f} s)")


def main(argv):
    args = argv[1:]
    if not args or len(args) % 3 or args[0] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        import tensorstore as ts
    except ImportError as e:
        print(f"tensorstore_check: cannot import tensorstore ({e}); "
              "install it with `pip install tensorstore`", file=sys.stderr)
        return 2
    print(f"tensorstore {_ts_version()}, numpy {np.__version__}")
    failed = 0
    for i in range(0, len(args), 3):
        store, raw, dt = args[i:i + 3]
        try:
            ok, msg = check(ts, store, raw, dt)
        except Exception as e:  # one bad store must not hide the others
            ok, msg = False, f"{type(e).__name__}: {e}"
        print(f"{'ok  ' if ok else 'FAIL'} {store}: {msg}")
        failed += not ok
    if failed:
        print(f"tensorstore_check: {failed} of {len(args) // 3} stores failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
