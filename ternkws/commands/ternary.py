"""`ternkws ternary`: print the ternary matrix the chip regenerates for a seed, shape and density."""

import json
import re

from ternkws.golden.errors import UserError

EXAMPLES = """
ternkws ternary --seed 1 --shape 64x128
ternkws ternary --seed 7 --shape 8x16 --density 0.5 --json
"""


def configure(parser):
    parser.add_argument("--seed", type=int, required=True, metavar="S", help="generator seed (0 <= S < 2^64)")
    parser.add_argument("--shape", required=True, metavar="OUTxIN", help="matrix shape, e.g. 64x128")
    parser.add_argument("--density", type=float, default=1 / 3, metavar="D", help="fraction of non-zero entries (default 1/3)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")


def parse_shape(text):
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise UserError(f"--shape must be OUTxIN with positive integers (e.g. 64x128), not {text!r}")
    c_out, c_in = int(m.group(1)), int(m.group(2))
    if c_out * c_in > 1 << 22:
        raise UserError(f"--shape {c_out}x{c_in} has more than 4M entries; pick a smaller matrix")
    return c_out, c_in


def run(args):
    from ternkws.golden.ternary_generator import realized_density, seed_state, ternary_matrix
    c_out, c_in = parse_shape(args.shape)
    if not 0 <= args.seed < 1 << 64:
        raise UserError(f"--seed must be in [0, 2^64), not {args.seed}")
    if not 0.0 < args.density <= 1.0:
        raise UserError(f"--density must be in (0, 1], not {args.density}")
    m = ternary_matrix(args.seed, c_out, c_in, args.density)
    stats = {
        "nonzero": int((m != 0).sum()), "plus": int((m == 1).sum()), "minus": int((m == -1).sum()),
        "measured_density": float((m != 0).mean()), "realized_density": realized_density(args.density),
    }
    if args.json:
        print(json.dumps({"seed": args.seed, "shape": [c_out, c_in], "density": args.density,
                          "start_state": f"0x{seed_state(args.seed):016x}", "order": "row-major",
                          **stats, "matrix": m.tolist()}))
        return 0
    sym = {1: "+", -1: "-", 0: "."}
    print(f"# seed {args.seed}, shape {c_out}x{c_in}, density {args.density:.4g} "
          f"(realized {stats['realized_density']:.4f}), start state 0x{seed_state(args.seed):016x}")
    for row in m:
        print("".join(sym[int(v)] for v in row))
    print(f"# {stats['nonzero']} non-zero ({stats['measured_density']:.4f}): {stats['plus']} +1, {stats['minus']} -1")
    return 0
