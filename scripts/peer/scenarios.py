"""The reference scenarios of `zwrite bench`, for the peer scripts.

Must match internal/bench/scenario.go (shape slowest first; uint16 unless
the user picks a dtype). Kept free of numpy so that shell scripts can read
the geometry anywhere:  python3 scenarios.py SCENARIO  prints
"EPOCH_SHAPE SHARD0" (the shape of one epoch, comma separated, and the
frames of one shard row);  python3 scenarios.py SCENARIO flags  prints the
geometry as zwrite append flags ("--shape 0,... --chunk ... --shard ...").
"""

import sys

SCENARIOS = {
    "256cube": dict(shape=[1000, 256, 256, 256, 3], chunk=[4, 32, 32, 32, 1],
                    shard=[64, 128, 128, 128, 3], dims=["t", "z", "y", "x", "c"]),
    "orca2": dict(shape=[10000, 2, 2048, 2304], chunk=[32, 1, 64, 64],
                  shard=[640, 2, 512, 576], dims=["t", "c", "y", "x"]),
    "medfmt": dict(shape=[10, 1, 10240, 15360], chunk=[4, 1, 128, 256],
                   shard=[12, 1, 2560, 3840], dims=["z", "c", "y", "x"]),
    "smallepoch": dict(shape=[65536, 16, 16], chunk=[32768, 1, 1],
                       shard=[32768, 16, 16], dims=["t", "y", "x"]),
}


def _csv(v):
    return ",".join(str(x) for x in v)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in SCENARIOS or sys.argv[2:] not in ([], ["flags"]):
        sys.exit("usage: scenarios.py {%s} [flags]" % "|".join(SCENARIOS))
    g = SCENARIOS[sys.argv[1]]
    if sys.argv[2:] == ["flags"]:
        print(f"--shape {_csv([0] + g['shape'][1:])} --chunk {_csv(g['chunk'])} --shard {_csv(g['shard'])}")
    else:
        print(_csv([g["chunk"][0]] + g["shape"][1:]), g["shard"][0])
