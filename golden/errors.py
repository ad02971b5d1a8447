"""User-facing errors.

A `UserError` is a problem with what the user gave us (a file, a parameter); the CLI prints its
message on one line and exits with status 2, without a traceback. Messages say what is wrong and what
to do.
"""


class UserError(Exception):
    """Bad input from the user (a bad file, option or checkpoint): printed as one line
    `ternkws CMD: error: MESSAGE` by the CLI, exit status 2.

    The CLI's exit statuses (`ternkws --help`, ternkws/commands/_common.py): 0 done and OK; 1 done but
    the result is not OK (a clip not bit-exact in sim / run, a design that does not fit in build); 2 a
    user error (this exception, argparse's usage errors, an unreadable or unwritable file the user
    named), which outranks 1; 130 interrupted."""
