"""User-facing errors.

A `UserError` is a problem with what the user gave us (a file, a parameter); the CLI prints its
message on one line and exits non-zero, without a traceback. Messages say what is wrong and what to do.
"""


class UserError(Exception):
    """Bad input from the user: printed as one line by the CLI, exit status 2."""
