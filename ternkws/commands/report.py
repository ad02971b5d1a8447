"""`ternkws report`: reports/summary.{md,json,png} from reports/accuracy.json and build/<board>/report.json
(boards/report.py); `--build` first runs the board builds that are missing (minutes each)."""

import json
import sys

EXAMPLES = """
ternkws report
ternkws report --build --json > summary.json
"""


def configure(parser):
    parser.add_argument("--out", default="reports", metavar="DIR", help="output folder (default reports)")
    parser.add_argument("--build-dir", default=None, metavar="DIR",
                        help="where the board builds are (default ./build, or $TERNKWS_BUILD_DIR)")
    parser.add_argument("--accuracy", default="reports/accuracy.json", metavar="FILE",
                        help="accuracy table (JSON; default reports/accuracy.json)")
    parser.add_argument("--build", action="store_true",
                        help="run the missing board builds first (ternary and stored, UP5K and ECP5-85F)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (stdout: the JSON alone)")


def run(args):
    from pathlib import Path

    from ternkws.boards.report import build_folder, summarize, write_summary
    from ternkws.golden.workspace import build_root

    if args.build_dir is None:
        args.build_dir = str(build_root())

    # Figures whose build report is missing keep the committed summary's values (marked as such).
    previous = Path(args.out) / "summary.json"
    summary = summarize(args.build_dir, args.accuracy)
    if args.build and summary["missing"]:
        from ternkws.boards.build import build_board, load_model
        for m in summary["missing"]:
            model, note = load_model(m["variant"])
            print(f"ternkws report: building {m['board']} ({m['variant']})", file=sys.stderr, flush=True)
            build_board(m["board"], model, m["variant"], Path(args.build_dir) / build_folder(m["board"], m["variant"]),
                        model_note=note, log=lambda msg: print(f"ternkws report: {msg}", file=sys.stderr, flush=True))
    summary = summarize(args.build_dir, args.accuracy, previous=previous)
    files = write_summary(summary, args.out)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(Path(files[0]).read_text(), end="")
        print(f"wrote {', '.join(str(f) for f in files)}")
    return 0
