"""`ternkws build`: bitstream and resource/throughput report of the whole board design (boards/build.py)."""

import json


def configure(parser):
    from ternkws.boards.platforms import BOARDS

    parser.add_argument("--board", default="icebreaker", help=f"one of {', '.join(BOARDS)} (default icebreaker)")
    parser.add_argument("--variant", default="ternary", choices=("ternary", "stored"),
                        help="ternary: LFSR-generated 1x1 (the design); stored: learned int8 1x1 weights in ROM "
                             "(the baseline; golden/models/baseline.npz, or a placeholder when missing)")
    parser.add_argument("--model", default=None, help="checkpoint (.npz); default: the bundled model of the variant")
    parser.add_argument("--out", default=None, help="output folder (default build/<board>, build/<board>-stored; build/ is ./build or $TERNKWS_BUILD_DIR)")
    parser.add_argument("--seed", type=int, default=None, help="nextpnr placement seed")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args):
    from ternkws.boards.build import build_board, load_model
    from ternkws.boards.platforms import get_board

    board = get_board(args.board)
    model, note = load_model(args.variant, args.model)
    from ternkws.golden.workspace import build_root
    out = args.out or str(build_root() / f"{board.name}{'' if args.variant == 'ternary' else '-' + args.variant}")
    quiet = args.json
    report = build_board(board, model, args.variant, out, model_note=note, seed=args.seed,
                         log=(lambda *a: None) if quiet else (lambda msg: print(f"ternkws build: {msg}", flush=True)))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(open(f"{out}/report.md").read(), end="")
    if not report.get("fits"):
        return 1
    return 0
