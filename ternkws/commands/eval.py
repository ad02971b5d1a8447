"""`ternkws eval`: float and int8 accuracy (overall and per class) of a checkpoint on a dataset split.

Works without torch: float via golden.network.forward_float, int8 via golden.network.forward_int per clip.
"""

import contextlib
import json
import os
import sys

from ternkws.golden.errors import UserError

from ._common import add_model_option, choices_metavar

EXAMPLES = """
ternkws eval --data data/synth
ternkws eval --model baseline --data data/synth --split val --json > val.json
ternkws eval --model my-model.npz --data speech_commands --limit 500
"""


def configure(parser):
    add_model_option(parser)
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="dataset folder (ternkws dataset, Speech Commands, or DIR/<label>/*.wav)")
    parser.add_argument("--split", default="test", metavar=choices_metavar(("train", "val", "test", "all")),
                        help="the split to evaluate (default test)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of a table (stdout: the JSON alone)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="J",
                        help="worker processes for features and the int8 forward (default 2)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N clips")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args):
    from ternkws.golden.checkpoint import load
    from ternkws.golden.evaluate import evaluate, format_table

    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {args.jobs}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, not {args.limit}")
    split = None if args.split == "all" else args.split
    model = load(args.model)
    # With --json, stdout is the JSON document alone: whatever the evaluation says goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = evaluate(model, args.data, split, jobs=args.jobs, progress=not args.quiet, limit=args.limit)
    if args.json:
        print(json.dumps(result))
    else:
        trained = "" if model.trained else "  (UNTRAINED placeholder weights)"
        print(f"model {model.path} [{model.model_id}] {model.topology.name} {model.topology.mixer}{trained}")
        print(f"data {args.data} split {args.split}: {result['n']} clips")
        print(format_table(result))
    return 0
