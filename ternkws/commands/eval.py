"""`ternkws eval`: float and int8 accuracy (overall and per class) of a checkpoint on a dataset split.

Works without torch: float via golden.network.forward_float, int8 via golden.network.forward_int per clip.
"""

import json
import os
from pathlib import Path

from ternkws.golden.errors import UserError

BUNDLED = ("default", "baseline", "budget")


def configure(parser):
    parser.add_argument("--model", default=None, metavar="M",
                        help="checkpoint .npz, or a bundled model: default (trained ternary 3x1x64), baseline "
                             "(learned 1x1), budget (same-budget ternary); default: default")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="dataset folder (ternkws dataset, Speech Commands, or DIR/<label>/*.wav)")
    parser.add_argument("--split", default="test", metavar="S",
                        help="train, val, test (default) or all")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="J",
                        help="worker processes for features and the int8 forward (default 2)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N clips")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_model(name):
    from ternkws.golden.checkpoint import MODELS_DIR
    if name is None:
        name = "default"
    if name in BUNDLED:
        path = MODELS_DIR / f"{name}.npz"
        if not path.exists():
            raise UserError(f"bundled model '{name}' is not in this checkout ({path}); train it with "
                            f"'ternkws train --model ... --out {path}' or pass a checkpoint file")
        return path
    path = Path(name)
    if not path.exists():
        raise UserError(f"--model {name}: no such checkpoint file (or bundled model: {', '.join(BUNDLED)})")
    return path


def run(args):
    from ternkws.golden.checkpoint import load
    from ternkws.golden.evaluate import evaluate, format_table

    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {args.jobs}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, not {args.limit}")
    split = None if args.split == "all" else args.split
    model = load(resolve_model(args.model))
    result = evaluate(model, args.data, split, jobs=args.jobs, progress=not args.quiet, limit=args.limit)
    if args.json:
        print(json.dumps(result))
    else:
        trained = "" if model.trained else "  (UNTRAINED placeholder weights)"
        print(f"model {model.path} [{model.model_id}] {model.topology.name} {model.topology.mixer}{trained}")
        print(f"data {args.data} split {args.split}: {result['n']} clips")
        print(format_table(result))
    return 0
