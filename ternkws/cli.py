"""The `ternkws` command line: one entry point, one module per subcommand (ternkws/commands/<name>.py).

Each command module defines `configure(parser)` (adds its arguments) and `run(args)` (returns the exit
status). Modules are imported lazily so that `ternkws ternary` never pays for torch or Amaranth.
"""

import argparse
import importlib
import importlib.util
import sys

from . import __version__
from .golden.errors import UserError

# name -> one-line help. A command whose module is not present in this checkout is not offered.
COMMANDS = {
    "infer": "golden int8 prediction per WAV clip",
    "ternary": "print the ternary matrix the chip generates for a seed and shape",
    "dataset": "synthesize the 12-class keyword dataset (flite/festival/espeak-ng + sox)",
    "train": "train ternary / learned-1x1 models with PyTorch and export checkpoints",
    "eval": "float and int8 accuracy of a checkpoint on a dataset directory",
    "synth": "synthesize and place one RTL unit alone; resources and Fmax",
    "sim": "simulate the accelerator RTL on WAV clips and compare with the golden model",
    "verilog": "write standalone Verilog of the accelerator",
    "build": "build a bitstream and resource report for a board",
    "flash": "program a board",
    "run": "classify WAV clips on a board (or the simulated board with --sim)",
    "report": "summary report: accuracy, resources, cycles (Markdown + JSON + PNG)",
}


def _available():
    for name, help_text in COMMANDS.items():
        module = f"ternkws.commands.{name}"
        if importlib.util.find_spec(module) is not None:
            yield name, help_text, module


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ternkws",
        description="Keyword spotting accelerator with LFSR-generated sparse ternary 1x1 convolutions.",
    )
    parser.add_argument("--version", action="version", version=f"ternkws {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text, module in _available():
        cmd = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        mod = importlib.import_module(module)
        mod.configure(cmd)
        cmd.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args._run(args)
    except UserError as e:
        print(f"ternkws {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ternkws {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
