"""`ternkws build`: bitstream and resource/throughput report of the whole board design (boards/build.py)."""

import json

from ._common import add_model_option, choices_metavar, model_kinds

EXAMPLES = """
ternkws build --board icebreaker --model my-model.npz --out build/mine
ternkws build --board icebreaker --mode stream
ternkws build --board ulx3s-85f --variant stored --json > build.json
"""


def configure(parser):
    from ternkws.boards.platforms import BOARDS

    parser.add_argument("--board", default="icebreaker", metavar=choices_metavar(BOARDS),
                        help="the board (default icebreaker)")
    parser.add_argument("--variant", default="ternary", choices=("ternary", "stored"),
                        help="ternary: LFSR-generated 1x1 (the design); stored: learned int8 1x1 weights in ROM "
                             "(the baseline; golden/models/baseline.npz, or a placeholder when missing)")
    add_model_option(parser, help=f"checkpoint: {model_kinds()}; default: default for --variant ternary, "
                                  "baseline for stored")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default build/<board>, build/<board>-stored; build/ is ./build or $TERNKWS_BUILD_DIR)")
    parser.add_argument("--mode", default="window", choices=("window", "stream"),
                        help="window: the window accelerator behind the version-1 commands (default); stream: the "
                             "streaming accelerator behind STREAM_START / FRAMES / POLL, UART at 1 Mbaud "
                             "(boards/PROTOCOL.md)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="nextpnr placement seed")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (stdout: the JSON alone)")


def run(args):
    from ternkws.boards.build import build_board, load_model
    from ternkws.boards.platforms import get_board

    board = get_board(args.board)
    model, note = load_model(args.variant, args.model)
    from ternkws.golden.workspace import build_root
    out = args.out or str(build_root() / (f"{board.name}{'' if args.variant == 'ternary' else '-' + args.variant}"
                                          + ("-stream" if args.mode == "stream" else "")))
    from ternkws.golden.progress import Progress
    # stderr: each step, the yosys / nextpnr phase with its elapsed time; stdout: the report (or JSON) alone
    progress = Progress(prefix="ternkws build: ")
    report = build_board(board, model, args.variant, out, model_note=note, seed=args.seed, log=progress.line,
                         progress=progress, mode=args.mode)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(open(f"{out}/report.md").read(), end="")
    if not report.get("fits"):
        return 1
    return 0
