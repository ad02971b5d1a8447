"""Progress of the long steps (synthesis, place and route, Verilator builds, simulation, board runs) on
stderr: plain Python, shared by sim/, boards/ and the CLI (stdout stays for results and JSON).

    progress = Progress(prefix="ternkws build: ")
    progress.status("nextpnr-ecp5: routing (43 s)", key="routing")   # transient, throttled
    progress.line("yosys: done in 48 s")                              # permanent
    with progress.ticking("building the Verilator model") as tick:    # elapsed time while a call blocks
        build()
    progress.out("a.wav: yes")                                        # a result line on stdout

On a terminal the status is one line rewritten in place (at most 5 redraws a second) and erased before a
permanent line; elsewhere (a pipe, a log file, CI) each status is a plain line, printed when its `key`
(the major phase) changes and otherwise at most once every `interval` seconds.
TERNKWS_PROGRESS=0 silences it all; TERNKWS_PROGRESS=plain gives plain lines on a terminal too.
"""

import contextlib
import os
import sys
import threading
import time

__all__ = ["Progress", "LogTail", "format_seconds", "pinned", "quiet", "ENV"]

ENV = "TERNKWS_PROGRESS"
TTY_REDRAW_S = 0.2


def format_seconds(seconds):
    """'0.4 s', '12 s', '2 min 18 s', '1 h 02 min'."""
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, s = divmod(int(round(s)), 60)
        return f"{m} min {s:02d} s"
    h, m = divmod(int(round(s)) // 60, 60)
    return f"{h} h {m:02d} min"


@contextlib.contextmanager
def pinned(stream):
    """A stream that keeps writing where `stream` writes now, even while its file descriptor is redirected
    (the quiet log of sim/accelerator_verilator.py sends fds 1 and 2 to a file): a duplicate of its
    descriptor, or `stream` itself when it has none (pytest's capture, a StringIO)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        yield stream
        return
    stream.flush()
    dup = os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                    errors="replace")
    try:
        yield dup
    finally:
        dup.close()


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class Progress:
    """Status and progress lines for one command (see the module docstring).

    stream: where it writes (default: sys.stderr as it is at each write, so pytest's capture sees it);
    prefix: put before every line; interval: seconds between plain status lines of one phase; tty: force
    in-place (True) or plain (False) output, None: in place when the stream is a terminal; enabled: False
    writes nothing (default: unless TERNKWS_PROGRESS=0)."""

    def __init__(self, stream=None, *, prefix="", interval=5.0, tty=None, enabled=None, clock=time.monotonic):
        env = os.environ.get(ENV, "").strip().lower()
        self.enabled = (env not in ("0", "off", "no", "false", "quiet")) if enabled is None else bool(enabled)
        self._stream = stream
        self.prefix, self.interval, self.clock = prefix, float(interval), clock
        self._tty = False if (tty is None and env == "plain") else tty
        self._lock = threading.RLock()
        self._shown = False          # a status line is on the terminal
        self._last_write = None      # clock of the last status written
        self._last_key = None

    # -- where ----------------------------------------------------------------------------------------

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stderr

    @property
    def tty(self):
        return _isatty(self.stream) if self._tty is None else bool(self._tty)

    def _write(self, text):
        stream = self.stream
        stream.write(text)
        stream.flush()

    # -- output ---------------------------------------------------------------------------------------

    def status(self, text, *, key=None, force=False):
        """A transient status: in place on a terminal; a plain line when `key` changed, when forced, or
        when `interval` seconds passed since the last one."""
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            changed = key != self._last_key
            since = None if self._last_write is None else now - self._last_write
            if self.tty:
                if not (force or changed or since is None or since >= TTY_REDRAW_S):
                    return
                width = _terminal_width(self.stream)
                line = (self.prefix + text)[:max(width - 1, 20)]
                self._write("\r" + line + "\x1b[K")
                self._shown = True
            else:
                if not (force or changed or since is None or since >= self.interval):
                    return
                self._write(self.prefix + text + "\n")
            self._last_write, self._last_key = now, key

    def line(self, text):
        """A permanent line (the status line, if any, is erased first and redrawn by the next status)."""
        if not self.enabled:
            return
        with self._lock:
            self._erase()
            self._write(self.prefix + text + "\n")

    def out(self, text, file=None):
        """A result line on stdout (or `file`), written whether progress is enabled or not; on a terminal
        the status line is erased first so the two do not mix."""
        with self._lock:
            if self.enabled:
                self._erase()
            stream = file if file is not None else sys.stdout
            stream.write(text + "\n")
            stream.flush()

    def clear(self):
        """Erase the status line (terminal only); call before other output to the same terminal."""
        with self._lock:
            self._erase()

    def _erase(self):
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    # -- helpers --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def ticking(self, text, *, done=None, every=None, first_after=3.0):
        """While the body runs, a status '<text> (<elapsed>)' after `first_after` s, then every
        `every` s (default: each redraw on a terminal, `interval` otherwise). `done`: a permanent line
        at the end ('{elapsed}' is replaced by the time taken). Yields a Tick: tick.text can be changed,
        tick.elapsed is the time so far."""
        tick = Tick(self, text)
        if not self.enabled:
            yield tick
            return
        every = (TTY_REDRAW_S * 5 if self.tty else self.interval) if every is None else every
        stop = threading.Event()

        def beat():
            if stop.wait(first_after):
                return
            while True:
                self.status(f"{tick.text} ({format_seconds(tick.elapsed)})", key=("tick", id(tick)), force=True)
                if stop.wait(every):
                    return

        thread = threading.Thread(target=beat, name="ternkws-progress", daemon=True)
        thread.start()
        try:
            yield tick
        finally:
            stop.set()
            thread.join()
            self.clear()
        if done:
            self.line(done.replace("{elapsed}", format_seconds(tick.elapsed)))

    @contextlib.contextmanager
    def pinned(self):
        """Keep writing where the stream writes now while the body redirects file descriptors 1 and 2."""
        if not self.enabled:
            yield self
            return
        saved = self._stream
        with pinned(self.stream) as stream:
            self._stream = stream
            try:
                yield self
            finally:
                self._stream = saved


class Tick:
    def __init__(self, progress, text):
        self.progress, self.text = progress, text
        self.start = progress.clock()

    @property
    def elapsed(self):
        return self.progress.clock() - self.start


def _terminal_width(stream):
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns if columns >= 20 else 100        # 0: a terminal that does not say (script, some CI)


class LogTail:
    """The complete lines appended to a (log) file since the last call; none while it does not exist.
    For following a tool's log, or a testbench's result lines, as they are written."""

    def __init__(self, path):
        self.path, self.pos, self.rest = path, 0, ""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return []
        self.pos += len(data)
        *lines, self.rest = (self.rest + data.decode(errors="replace")).split("\n")
        return lines

    def exists(self):
        return os.path.exists(self.path)


def quiet():
    """A Progress that writes nothing (the default of library calls given no progress)."""
    return Progress(enabled=False)
