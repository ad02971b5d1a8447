"""`ternkws eval`: float and int8 accuracy (overall and per class) of a checkpoint on a dataset split.

Works without torch: float via golden.network.forward_float, int8 via golden.network.forward_int per clip.

`ternkws eval --stream`: the streaming benchmark instead (golden/stream_bench.py): continuous recordings
assembled from the split's clips, the golden streaming model and detector over them; hit rate, false
alarms per hour, DET curve and latency in OUT/streaming.{md,json,png} (default reports/).
"""

import contextlib
import json
import os
import sys
from pathlib import Path

from ternkws.golden.errors import UserError

from ._common import add_model_option, choices_metavar

EXAMPLES = """
ternkws eval --data data/synth
ternkws eval --model baseline --data data/synth --split val --json > val.json
ternkws eval --stream --data data/synth
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
    stream = parser.add_argument_group("streaming benchmark (--stream)")
    stream.add_argument("--stream", action="store_true",
                        help="run the streaming benchmark: long recordings from the split's clips through the golden "
                             "streaming model; writes OUT/streaming.{md,json,png}")
    stream.add_argument("--minutes", type=float, default=20.0, metavar="MIN",
                        help="--stream: minutes of recordings (default 20, in recordings of 5 min)")
    stream.add_argument("--seed", type=int, default=0, metavar="S", help="--stream: recording assembly seed (default 0)")
    stream.add_argument("--threshold", type=float, default=None, metavar="X",
                        help="--stream: detector margin threshold, logit units per decision (default that of "
                             "`ternkws listen`)")
    stream.add_argument("--out", default="reports", metavar="DIR", help="--stream: report folder (default reports)")
    stream.add_argument("--write-recordings", default=None, metavar="DIR",
                        help="--stream: also save the recordings as 16-bit WAVs with their keyword times (CSV)")


def run(args):
    from ternkws.golden.checkpoint import load
    from ternkws.golden.evaluate import evaluate, format_table

    if args.stream:
        return _stream(args)
    for opt, v in (("--write-recordings", args.write_recordings), ("--threshold", args.threshold)):
        if v is not None:
            raise UserError(f"{opt} goes with --stream")
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


def _stream(args):
    from ternkws.commands._common import writable_file
    from ternkws.golden import stream_bench, streaming
    from ternkws.golden.checkpoint import load
    from ternkws.golden.workspace import display_path, source_commit, utc_now

    if args.limit is not None:
        raise UserError("--limit does not go with --stream (use --minutes)")
    if not args.minutes > 0:
        raise UserError(f"--minutes must be positive, not {args.minutes}")
    if args.split == "all":
        raise UserError("--stream takes one split (train, val or test), not all")
    split = args.split
    writable_file(str(Path(args.out) / "streaming.json"), "--out")
    model = load(args.model)
    threshold = streaming.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"ternkws eval: {msg}", file=sys.stderr, flush=True))
    recordings = None
    if args.write_recordings:
        say(f"assembling {args.minutes:g} min of {split} recordings from {args.data}")
        recordings = stream_bench.assemble(args.data, split, args.minutes, args.seed)
        files = stream_bench.write_recordings(recordings, args.write_recordings)
        say(f"wrote {len(files)} recordings to {args.write_recordings}")
    result = stream_bench.benchmark(model, args.data, split, args.minutes, args.seed, threshold,
                                    progress=say, recordings=recordings)
    result["model"] = display_path(model.path)
    result["data"] = display_path(args.data)
    result["date"] = utc_now()
    result["commit"] = source_commit()
    command = "ternkws eval --stream --data " + str(result["data"])
    for opt, v, default in (("--model", args.model, None), ("--split", split, "test"), ("--minutes", args.minutes, 20.0),
                            ("--seed", args.seed, 0), ("--threshold", args.threshold, None)):
        if v != default:
            command += f" {opt} {v:g}" if isinstance(v, float) else f" {opt} {v}"
    result["command"] = command
    files = stream_bench.write_report(result, args.out, command)
    a = result["results"]["aligned"]["at_default"]
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model {result['model']} [{model.model_id}]: {result['minutes']:.1f} min of {split} recordings, "
              f"{a['keywords']} keywords")
        for name, r in result["results"].items():
            f = r["at_default"]
            lat = f["latency_s"]
            print(f"{name:8s} hit rate {100 * f['hit_rate']:5.1f}% ({f['hits']}/{f['keywords']}), "
                  f"{f['fa_per_hour']:.0f} false alarms/hour ({f['false_alarms']}), latency median "
                  + (f"{lat['median']:.2f} s" if lat else "-") + f", golden {r['realtime_factor']:.0f}x real time")
        print(f"wrote {', '.join(str(f) for f in files)}")
    return 0
