"""What every `ternkws` command shares: the exit statuses, the `--model` option, the per-file loop.

The grammar (see `ternkws --help`):

* exit status 0: done, the result is OK; 1: done, but the result is not OK (`sim` / `run`: a clip is not
  bit-exact; `build`: the design does not fit the board); 2: a user error (a bad file, option or
  checkpoint), reported as one line `ternkws CMD: error: ...`; 130: interrupted. A user error outranks
  a "not OK" result: `sim a.wav missing.wav` exits 2 even when a.wav is bit-exact.
* `--model M` is always a checkpoint: a .npz file or a bundled model name (golden/models/<name>.npz).
* commands that take several WAV files go on past a bad one: each bad file is one error line on stderr
  as it comes, a summary line follows when several files were given, and the exit status is 2.
* with `--json`, stdout holds the JSON document alone; every message goes to stderr.
"""

import os
import sys
import tempfile
from pathlib import Path

from ternkws.golden.data import expected_label  # noqa: F401  (the commands import it from here)
from ternkws.golden.errors import UserError

EXIT_OK = 0
EXIT_NOT_OK = 1        # the command ran; its result is "not OK" (not bit-exact, does not fit)
EXIT_USER_ERROR = 2    # bad input: a file, an option, a checkpoint (argparse's usage errors too)
EXIT_INTERRUPTED = 130

CACHE_DIR_ENV = "TERNKWS_CACHE_DIR"


def bundled_models():
    """{name: description} of the bundled models (golden/checkpoint.py BUNDLED_MODELS)."""
    from ternkws.golden.checkpoint import BUNDLED_MODELS
    return BUNDLED_MODELS


def model_kinds():
    """What a checkpoint option takes, for its help: 'a .npz file or a bundled model name (default, ...)'."""
    return f"a .npz file or a bundled model name ({', '.join(bundled_models())})"


def model_help(default="default"):
    tail = f"; default: {default}" if default else ""
    return f"checkpoint: {model_kinds()}{tail}"


def add_model_option(parser, default="default", help=None):
    """The one `--model M` option: a checkpoint file or a bundled model name (resolved by
    golden.checkpoint.resolve when the command loads it)."""
    parser.add_argument("--model", default=None, metavar="M", help=help or model_help(default))


def choices_metavar(names):
    """'{a,b,c}': how argparse shows choices, for options checked in `run` (UserError, one line)."""
    return "{" + ",".join(names) + "}"


def writable_file(name, option, example="out"):
    """Path(name) when a file can be written there (missing folders are created by the writer), else a
    UserError: a directory, a path through a file, or a folder this user cannot write. Checked before
    the work, so that minutes of elaboration or training do not end in a traceback."""
    out = Path(name)
    if out.is_dir():
        raise UserError(f"{option} {out} is a directory; give a file name such as {out / example}")
    if out.exists() and not os.access(out, os.W_OK):
        raise UserError(f"{option} {out}: the file is not writable")
    folder = next(p for p in out.absolute().parents if p.exists())
    if not folder.is_dir():
        raise UserError(f"{option} {out}: {folder} is a file, not a folder")
    try:
        # a real probe (os.access says yes to root everywhere, even in /proc or a read-only mount)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"{option} {out}: cannot create files in {folder} ({e.strerror or e})") from None
    return out


def error_line(command, message):
    print(f"ternkws {command}: error: {message}", file=sys.stderr, flush=True)


def read_each(command, paths, read):
    """(good, bad) for the files a command takes: good is [(path, read(path))] of the files `read`
    accepts, bad is [{"file": path, "error": message}] of the ones it refuses with a UserError, each
    reported on stderr (one line) as it comes."""
    good, bad = [], []
    for path in paths:
        try:
            good.append((path, read(path)))
        except UserError as e:
            bad.append({"file": str(path), "error": str(e)})
            error_line(command, e)
    return good, bad


def summarize_bad(command, bad, total, then=""):
    """The summary line on stderr after a per-file loop, when several files were given and some were
    refused; `then` says what happens next (e.g. 'simulating the other 2')."""
    if bad and total > 1:
        print(f"ternkws {command}: {len(bad)} of {total} files refused (errors above)"
              + (f"; {then}" if then else ""), file=sys.stderr, flush=True)


def require_some(command, good, bad):
    """For a command that needs at least one usable file before it starts (sim, run): the summary line,
    or a user error when there is none (for a single file its error line is already the report)."""
    total = len(good) + len(bad)
    if not good:
        if total == 1:
            raise AlreadyReported()
        raise UserError(f"none of the {total} files could be used (errors above)")
    summarize_bad(command, bad, total, f"going on with the other {len(good)}; exit status "
                                       f"{EXIT_USER_ERROR} at the end")


class AlreadyReported(UserError):
    """A user error whose line is already on stderr: the CLI adds nothing and exits with status 2."""

    def __init__(self):
        super().__init__("")


def accuracy_line(pairs):
    """'8/12 right (expected label from the file or folder name)' for [(expected or None, got)], or ''."""
    known = [(e, g) for e, g in pairs if e is not None]
    if not known:
        return ""
    right = sum(e == g for e, g in known)
    return f"{right}/{len(known)} right (expected label from the file or folder name)"
