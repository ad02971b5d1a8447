"""`ternkws ternary`: print the ternary matrix the chip regenerates for a seed, shape and density."""

import json
import re

from ternkws.golden.errors import UserError

EXAMPLES = """
ternkws ternary --seed 1 --shape 64x128
ternkws ternary --seed 7 --shape 8x16 --density 0.5 --json
ternkws ternary --seed 3 --shape 16x64 --pattern grouped
"""


def configure(parser):
    parser.add_argument("--seed", type=int, required=True, metavar="S", help="generator seed (0 <= S < 2^64)")
    parser.add_argument("--shape", required=True, metavar="OUTxIN", help="matrix shape, e.g. 64x128")
    parser.add_argument("--density", type=float, default=1 / 3, metavar="D", help="fraction of non-zero entries (default 1/3)")
    parser.add_argument("--pattern", default="iid", metavar="{iid,grouped}",
                        help="iid (independent entries, default) or grouped (one nonzero per group of "
                             "1/density inputs; golden/SPEC.md section 1.1)")
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
    from ternkws.golden.ternary_generator import PATTERNS, group_size, realized_density, seed_state, ternary_matrix
    c_out, c_in = parse_shape(args.shape)
    if not 0 <= args.seed < 1 << 64:
        raise UserError(f"--seed must be in [0, 2^64), not {args.seed}")
    if not 0.0 < args.density <= 1.0:
        raise UserError(f"--density must be in (0, 1], not {args.density}")
    if args.pattern not in PATTERNS:
        raise UserError(f"unknown --pattern '{args.pattern}'; choose one of {', '.join(PATTERNS)}")
    grouped = args.pattern == "grouped"
    if grouped and args.density < 1 / 128:
        raise UserError(f"the grouped pattern needs --density >= 1/128 (groups of at most 128 inputs), not {args.density}")
    m = ternary_matrix(args.seed, c_out, c_in, args.density, args.pattern)
    stats = {
        "nonzero": int((m != 0).sum()), "plus": int((m == 1).sum()), "minus": int((m == -1).sum()),
        "measured_density": float((m != 0).mean()),
        "realized_density": 1 / group_size(args.density) if grouped else realized_density(args.density),
    }
    if args.json:
        print(json.dumps({"seed": args.seed, "shape": [c_out, c_in], "density": args.density,
                          "start_state": f"0x{seed_state(args.seed):016x}", "pattern": args.pattern,
                          "order": "8-row blocks, group-major (SPEC 1.1)" if grouped else "row-major",
                          **stats, "matrix": m.tolist()}))
        return 0
    sym = {1: "+", -1: "-", 0: "."}
    print(f"# seed {args.seed}, shape {c_out}x{c_in}, {args.pattern} pattern, density {args.density:.4g} "
          f"(realized {stats['realized_density']:.4f}), start state 0x{seed_state(args.seed):016x}")
    for row in m:
        print("".join(sym[int(v)] for v in row))
    print(f"# {stats['nonzero']} non-zero ({stats['measured_density']:.4f}): {stats['plus']} +1, {stats['minus']} -1")
    return 0
