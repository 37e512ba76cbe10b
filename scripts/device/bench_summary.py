#!/usr/bin/env python3
"""Summarize zwrite-bench/1 records (zwrite bench --json, tensorstore_bench.py).

Usage: bench_summary.py FILE...   (JSONL, one record per line, or JSON files
holding one record or a list of them)

Prints one row per run: scenario, codec, tool/backend, GB input, end-to-end
GB/s, ratio, the compress stage alone (input bytes over the stage's busy
time; on the GPU the kernels alone), the stage wall rate, the CPU codec
ceiling and end-to-end / ceiling, the same-run pinned H2D rate where the
record has one, and then zwrite / tensorstore per scenario and codec.
Only the standard library: it runs wherever python3 does.
"""

import json
import sys


def load(paths):
    recs = []
    for p in paths:
        with open(p) as f:
            text = f.read()
        text = text.strip()
        if not text:
            continue
        try:
            d = json.loads(text)
            recs.extend(d if isinstance(d, list) else [d])
            continue
        except ValueError:
            pass
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except ValueError as e:
                print(f"{p}:{n}: not JSON ({e}); skipped", file=sys.stderr)
                continue
            recs.extend(d if isinstance(d, list) else [d])
    return recs


def stage(rec, name):
    for s in rec.get("stages") or []:
        if s.get("name") == name:
            return s.get("gbps") or 0.0
    return 0.0


def h2d(rec):
    """A same-run host-to-device rate, wherever a record keeps it (the
    first number under a key with "h2d" in it, nested dicts included)."""
    def find(d):
        for k, v in d.items():
            kl = k.lower()
            if "h2d" in kl and "over" not in kl and isinstance(v, (int, float)) and v > 0:
                return float(v)
            if isinstance(v, dict):
                got = find(v)
                if got:
                    return got
        return 0.0
    for where in ("baselines", "result", "config"):
        got = find(rec.get(where) or {})
        if got:
            return got
    return 0.0


def who(rec):
    tool = rec.get("tool", "?")
    if tool == "zwrite":
        return "zwrite-" + (rec.get("config") or {}).get("backend", "?")
    return tool


def fmt(v, w=7, p=2):
    return f"{v:{w}.{p}f}" if v else f"{'-':>{w}}"


def main(argv):
    recs = load(argv[1:])
    if not recs:
        print("no bench records")
        return 1
    hdr = (f"{'scenario':<10} {'codec':<5} {'who':<14} {'GB in':>7} {'GB/s':>7} {'ratio':>6} "
           f"{'compr':>7} {'stwall':>7} {'ceil':>7} {'e2e/c':>6} {'h2d':>7}")
    print(hdr)
    print("-" * len(hdr))
    best = {}
    for r in recs:
        sc, res, bl = r.get("scenario") or {}, r.get("result") or {}, r.get("baselines") or {}
        key = (sc.get("name", "?"), sc.get("codec", "?"))
        gbps = res.get("input_gbps") or 0.0
        print(f"{key[0]:<10} {key[1]:<5} {who(r):<14} {(res.get('input_bytes') or 0) / 1e9:7.1f} "
              f"{fmt(gbps)} {fmt(res.get('ratio') or 0, 6)} {fmt(stage(r, 'compress'))} "
              f"{fmt(stage(r, 'stage wall'))} {fmt(bl.get('codec_ceiling_gbps') or 0)} "
              f"{fmt(bl.get('e2e_over_ceiling') or 0, 6)} {fmt(h2d(r))}")
        best.setdefault(key, {})[who(r)] = gbps
    print("\ncompr: compress stage alone (input bytes / busy s; summed over workers on the CPU)")
    print("stwall: the stage's wall rate; ceil: CPU codec alone on all cores, same run\n")
    for key, by in best.items():
        ts = by.get("tensorstore", 0)
        if not ts:
            continue
        parts = [f"{k} {v / ts:.2f}x" for k, v in sorted(by.items()) if k != "tensorstore" and v]
        if parts:
            print(f"{key[0]:<10} {key[1]:<5} vs tensorstore ({ts:.2f} GB/s): " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
