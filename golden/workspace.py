"""Where generated files go, and where the source checkout is (when there is one).

Generated files (simulator builds, bitstreams, logs) go under `build_root()`: the folder named by the
environment variable TERNKWS_BUILD_DIR, else ./build in the current directory -- never into the
installed package. `source_checkout()` is the git checkout this package runs from, or None for an
installed copy; only then may a report record a commit (nothing runs git on an installed tree).
"""

import os
from pathlib import Path

__all__ = ["BUILD_DIR_ENV", "build_root", "source_checkout", "source_state", "source_commit", "display_path",
           "utc_now"]

BUILD_DIR_ENV = "TERNKWS_BUILD_DIR"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent   # the folder holding golden/, hw/, ... (a checkout) or site-packages/ternkws


def build_root():
    """TERNKWS_BUILD_DIR if set, else build (relative to the current directory)."""
    return Path(os.environ.get(BUILD_DIR_ENV) or "build")


def source_checkout():
    """The root of the git checkout holding these sources, or None when running from an installed copy."""
    root = PACKAGE_ROOT
    if (root / ".git").exists() and (root / "pyproject.toml").is_file() and (root / "golden").is_dir():
        return root
    return None


def source_state(*paths):
    """{"commit": 'abc1234', "modified": [files with local changes or untracked, below `paths` if given]} of
    the checkout; {} for an installed copy or when git cannot tell."""
    import subprocess
    root = source_checkout()
    if root is None:
        return {}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=30).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=root,
                                capture_output=True, text=True, timeout=30).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {"commit": commit or None, "modified": sorted(line[3:] for line in status if line.strip())}


def source_commit():
    """'abc1234' (or 'abc1234+changes' with local changes) of the checkout, None for an installed copy."""
    state = source_state()
    if not state.get("commit"):
        return None
    return state["commit"] + ("+changes" if state["modified"] else "")


def utc_now():
    """The current time, ISO 8601 in UTC to the second (for 'measured on' stamps)."""
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def display_path(path):
    """`path` relative to the checkout when inside it, else its name only: reports carry no machine paths."""
    if path is None:
        return None
    path = Path(path).resolve()
    root = source_checkout()
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return path.name
