"""The `ternkws` command line: one entry point, one module per subcommand (ternkws/commands/<name>.py).

Each command module defines `configure(parser)` (adds its arguments), `run(args)` (returns the exit
status) and `EXAMPLES` (the lines closing its --help). Modules are imported lazily so that `ternkws
ternary` never pays for torch. The grammar every command follows (exit statuses, `--model`, files,
`--json`) is in ternkws/commands/_common.py and in the epilog of `ternkws --help`.
"""

import argparse
import importlib
import importlib.util
import sys

from . import __version__
from .commands._common import (CACHE_DIR_ENV, EXIT_INTERRUPTED, EXIT_NOT_OK, EXIT_USER_ERROR, AlreadyReported,
                               bundled_models)
from .golden.errors import UserError

# name -> one-line help. A command whose module is not present in this checkout is not offered.
COMMANDS = {
    "infer": "golden int8 prediction per WAV clip",
    "listen": "keyword detections in audio of any length (streaming golden model; a microphone too)",
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


def epilog():
    models = "\n".join(f"                {name:9s} golden/models/{name}.npz: {text}"
                       for name, text in bundled_models().items())
    return f"""\
conventions (every command):
  --model M   a checkpoint: a .npz file, or the name of a bundled model:
{models}
  WAV...      commands taking several clips (infer, sim, run) go on past a bad file: one error line
              per bad file on stderr as it comes, a summary line, and exit status 2 at the end
  --json      stdout holds the JSON document alone; every message goes to stderr

exit status:
  0    done, the result is OK
  {EXIT_NOT_OK}    done, but the result is not OK: sim / run found a clip that is not bit-exact,
       build a design that does not fit the board
  {EXIT_USER_ERROR}    user error: a bad file, option or checkpoint (one line "ternkws CMD: error: ...",
       no traceback); it outranks 1
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)

files:
  ${CACHE_DIR_ENV}  caches (the MFCC features of eval / train), default $XDG_CACHE_HOME/ternkws
                      or ~/.cache/ternkws; never beside the data
  $TERNKWS_BUILD_DIR  build outputs (bitstreams, reports, simulator builds); default ./build

examples:
  ternkws infer golden/samples/*.wav
  ternkws sim --model baseline golden/samples/yes.wav
  ternkws CMD --help"""


class UsageError(Exception):
    """A command-line syntax error found by argparse (missing/unknown option, bad choice)."""

    def __init__(self, parser, message):
        super().__init__(message)
        self.parser = parser


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is returned by `main` as exit status 2 (like every user error)
    instead of exiting from inside parse_args; --help and --version still exit 0."""

    def error(self, message):
        raise UsageError(self, message)


def _examples(text):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser():
    parser = Parser(
        prog="ternkws",
        description="Keyword spotting accelerator with LFSR-generated sparse ternary 1x1 convolutions.",
        epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ternkws {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    parser.commands = sub.choices
    for name, help_text, module in _available():
        mod = importlib.import_module(module)
        cmd = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                             epilog=_examples(mod.EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.configure(cmd)
        cmd.set_defaults(_run=mod.run)
    return parser


def _error(command, message):
    print(f"ternkws{' ' + command if command else ''}: error: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:   # reported by the command's parser (its prog and usage), not the top one
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except UsageError as e:
        print(f"{e.parser.prog}: error: {e}", file=sys.stderr)
        print(e.parser.format_usage().rstrip(), file=sys.stderr)
        print(f"(see `{e.parser.prog} --help`)", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    try:
        status = args._run(args)
    except AlreadyReported:
        return EXIT_USER_ERROR
    except UserError as e:
        _error(args.command, e)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"ternkws {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (`ternkws ternary ... | head`): not an error worth a traceback
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13     # what a shell reports for SIGPIPE
    except OSError as e:
        # a file the user named could not be read or written (a directory, a missing or unwritable
        # folder): one line, like every user error. An OSError without a file name is a bug: traceback.
        if e.filename is None:
            raise
        _error(args.command, f"{e.filename}: {e.strerror or e}")
        return EXIT_USER_ERROR
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
