"""`ternkws flash`: program a board with the bitstream `ternkws build` made, the way amaranth-boards does
it (the platform's `toolchain_program`: `$ICEPROG` / `iceprog FILE` for the iCEBreaker,
`$OPENFPGALOADER` / `openFPGALoader -b ulx3s -m FILE` for the ULX3S, i.e. into SRAM). With `--model M`
it first checks that the bitstream was built from M (the model id in the build's report.json beside it),
so that the board then answers `ternkws run --model M`."""

from ._common import add_model_option, choices_metavar, model_kinds

EXAMPLES = """
ternkws flash --board icebreaker --model my-model.npz
ternkws flash --board icebreaker --mode stream
ternkws flash --board ulx3s-85f --bitstream build/ulx3s-85f/top.bit
"""

# Debian packages of the programmers (install with --no-install-recommends: the recommended packages
# put Debian's old yosys on PATH).
PROGRAMMERS = {
    "iceprog": ("ICEPROG", "iceprog", "fpga-icestorm"),
    "openfpgaloader": ("OPENFPGALOADER", "openFPGALoader", "openfpgaloader"),
}


def configure(parser):
    from ternkws.boards.platforms import BOARDS

    parser.add_argument("--board", default="icebreaker", metavar=choices_metavar(BOARDS),
                        help="the board (default icebreaker)")
    parser.add_argument("--mode", default="window", choices=("window", "stream"),
                        help="which build to flash when --bitstream is not given: window (build/<board>/, the "
                             "default) or stream (build/<board>-stream/, ternkws build --mode stream)")
    parser.add_argument("--bitstream", default=None, metavar="FILE",
                        help="bitstream file (default build/<board>[-stream]/top.bin for iCE40, top.bit for ECP5)")
    add_model_option(parser, help="check first that the bitstream was built from this checkpoint (the model id "
                                  f"in the report.json beside it): {model_kinds()}; default: no check")


def programmer_command(board):
    """The programmer the platform will run (env variable or default name), or UserError naming its
    Debian package when it is not installed."""
    import os
    import shutil

    from ternkws.golden.errors import UserError

    var, default, package = PROGRAMMERS[board.programmer]
    tool = os.environ.get(var, default)
    if shutil.which(tool) is None:
        raise UserError(f"the programmer {tool!r} for {board.name} is not installed (or ${var} does not name "
                        f"an executable); install it with `apt-get install --no-install-recommends {package}` "
                        f"(Debian) or set ${var}")
    return tool


def check_model(bitstream, board, name):
    """UserError unless the build report beside `bitstream` names the model id of checkpoint `name`."""
    import json

    from ternkws.golden.checkpoint import load
    from ternkws.golden.errors import UserError

    model = load(name)
    report = bitstream.parent / "report.json"
    rebuild = f"ternkws build --board {board.name} --model {name}"
    try:
        built = json.loads(report.read_text())["model"]["id"]
    except FileNotFoundError:
        raise UserError(f"{bitstream}: no {report.name} beside it to check the model; rebuild it ({rebuild}) "
                        f"or flash without --model") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{report}: cannot read the model id ({e}); rebuild ({rebuild})") from None
    if built != model.model_id:
        raise UserError(f"{bitstream} was built from model {built}, not {model.path} (model {model.model_id}); "
                        f"build it first: {rebuild}")
    return model


def run(args):
    from pathlib import Path

    from ternkws.boards.platforms import get_board
    from ternkws.golden.errors import UserError

    board = get_board(args.board)
    from ternkws.golden.workspace import build_root
    stream = getattr(args, "mode", "window") == "stream"
    folder = board.name + ("-stream" if stream else "")
    path = Path(args.bitstream) if args.bitstream else build_root() / folder / ("top" + board.bitstream_suffix)
    if not path.is_file():
        mode = " MODE=stream" if stream else ""
        raise UserError(f"{path}: no bitstream; run `make bitstream BOARD={board.name}{mode}` "
                        f"(or `ternkws build --board {board.name}{' --mode stream' if stream else ''}`) first")
    if path.suffix != board.bitstream_suffix:
        raise UserError(f"{path}: {board.name} takes a {board.bitstream_suffix} bitstream, not {path.suffix}")
    if args.model is not None:
        check_model(path, board, args.model)
    tool = programmer_command(board)
    # The command line of the platform's toolchain_program, on the file itself (amaranth's
    # LocalBuildProducts would hand the programmer a temporary copy).
    cmd = [tool, str(path)] if board.programmer == "iceprog" else [tool, "-b", "ulx3s", "-m", str(path)]
    print(f"ternkws flash: {' '.join(cmd)}", flush=True)
    import subprocess
    try:
        subprocess.check_call(cmd)
    except subprocess.CalledProcessError as e:
        raise UserError(f"{tool} failed (exit status {e.returncode}): is the board connected and powered?") from None
    return 0
