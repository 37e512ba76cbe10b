#!/usr/bin/env python3
"""Split bench records (JSONL or JSON) into one file per run for docs/bench.

Usage: split_records.py DIR FILE...

Each zwrite-bench/1 record goes to DIR/zwrite-BACKEND-SCENARIO-CODEC.json
or DIR/tensorstore-SCENARIO-CODEC.json (the names scripts/peer/compare.sh
uses), indented. A second record with the same name gets -2, -3, ...
appended rather than overwriting the first. Prints the files written.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_summary import load  # noqa: E402  (same directory)


def name(rec):
    sc = rec.get("scenario") or {}
    scen, codec = sc.get("name", "unknown"), sc.get("codec", "unknown")
    tool = rec.get("tool", "unknown")
    if tool == "zwrite":
        return f"zwrite-{(rec.get('config') or {}).get('backend', 'unknown')}-{scen}-{codec}"
    return f"{tool}-{scen}-{codec}"


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    recs = load(argv[2:])
    used = set()
    for rec in recs:
        base = name(rec)
        stem, n = base, 1
        while stem in used or os.path.exists(os.path.join(out, stem + ".json")):
            n += 1
            stem = f"{base}-{n}"
        used.add(stem)
        path = os.path.join(out, stem + ".json")
        with open(path, "w") as f:
            f.write(json.dumps(rec, indent=2) + "\n")
        print(path)
    return 0 if recs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
