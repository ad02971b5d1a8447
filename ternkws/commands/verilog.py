"""`ternkws verilog`: standalone Verilog of the accelerator for a checkpoint and configuration."""

import sys

from ._common import add_model_option, choices_metavar, writable_file

EXAMPLES = """
ternkws verilog -o build/ternkws_up5k.v
ternkws verilog --model baseline --config ecp5 -o build/baseline_ecp5.v
"""

CONFIG_NAMES = ("up5k", "ecp5")   # hw/accelerator.py CONFIGS (checked in run; tests/test_cli_grammar.py)


def configure(parser):
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="Verilog file to write (its folder is created if missing)")
    add_model_option(parser)
    parser.add_argument("--config", default="up5k", metavar=choices_metavar(CONFIG_NAMES),
                        help="accelerator configuration (default up5k)")
    parser.add_argument("--name", default="ternkws_accelerator", help="top module name")


def header(model, config, name):
    from ternkws import __version__
    top = model.topology
    return "\n".join([
        f"// {name}: ternkws {__version__} keyword-spotting accelerator (generated; do not edit)",
        f"// checkpoint: {model.path} (model id {model.model_id}, {'trained' if model.trained else 'RANDOM WEIGHTS'})",
        f"// network: {top.name} {top.mixer} 1x1, density {top.density:.4f}, seed {top.seed}, "
        f"{model.features.n_frames} frames x {top.n_mfcc} MFCC, {top.n_classes} classes: {' '.join(model.labels)}",
        f"// configuration: {config.name}: {config.mixer_lanes} mixer lanes, {config.dw_lanes} depthwise lanes",
        "// ports: clk, rst (synchronous, active high);",
        "//   i__valid, i__ready, i__payload[7:0]: int8 features, frame-major (T x n_mfcc values per window)",
        "//   o__valid, o__ready, o__payload[32:0]: {last, value[31:0]}: the logits, then the class (last = 1)",
        "//   busy: a window is being loaded or computed",
        "// contracts: golden/SPEC.md; verify with `ternkws sim`",
        "",
    ])


def run(args):
    from amaranth.back import verilog

    from ternkws.golden.checkpoint import load
    from ternkws.hw.accelerator import CONFIGS, Accelerator
    from ternkws.golden.errors import UserError

    if args.config not in CONFIGS:
        raise UserError(f"--config must be one of {', '.join(CONFIGS)}, not {args.config!r}")
    out = writable_file(args.output, "-o", "ternkws.v")   # before the minutes of elaboration
    model = load(args.model)
    config = CONFIGS[args.config]
    try:
        dut = Accelerator(model, config)
    except ValueError as e:
        raise UserError(f"configuration {config.name} does not fit model {model.path}: {e}") from None
    text = verilog.convert(dut, name=args.name)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(header(model, config, args.name) + text)
    except OSError as e:
        raise UserError(f"-o {out}: cannot write it ({e.strerror or e})") from None
    print(f"wrote {out} ({len(text.splitlines()):,} lines): {args.name}, {config.name} configuration, "
          f"model id {model.model_id}", file=sys.stderr)
    return 0
