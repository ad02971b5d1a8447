"""The simulated board: BoardTop under cocotb + Verilator in a background process, reachable as a serial
port (a localhost TCP socket, see sim/tb_board.py).

    from ternkws.sim.board_sim import BoardSim
    with BoardSim(model, config) as port:        # builds (cached), starts, connects
        device = Device(port, timeout=60, result_timeout=600)
        device.classify(window)
    # on exit: the connection closes, the testbench ends, the process is reaped

The simulated clock is 100 MHz (the cocotb clock of sim/streams.py) and the UART runs at
`clocks_per_bit` clocks a bit; the board's inter-byte timeout is `timeout_cycles` simulated cycles. The
same host code drives a real board through pyserial: only the port differs.

Run directly (what the background process does):
    python -m ternkws.sim.board_sim --model M.npz --config '{"name": "up5k", "mixer_lanes": 8, "dw_lanes": 2}' \
        --port-file F [--stats S] [--clocks-per-bit 4] [--simulator verilator] [--mode window|stream]

`mode="stream"` runs the stream board (BoardTop(mode="stream"): the streaming accelerator behind
STREAM_START / FRAMES / POLL), which `ternkws listen --sim` talks to.
"""

import argparse
import copy
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ternkws.golden.progress import LogTail, Progress, format_seconds, quiet

from .streams import CLOCK_PERIOD_NS

__all__ = ["BoardSim", "SimulationError", "SIM_CLOCK_HZ", "board_top"]

SIM_CLOCK_HZ = round(1e9 / CLOCK_PERIOD_NS)
DEFAULT_CLOCKS_PER_BIT = 4
DEFAULT_TIMEOUT_CYCLES = 4000
PROGRESS_MARK = "ternkws-progress: "     # the background process's progress lines in its log start so
QUIET_START_S = 2.0


class SimulationError(RuntimeError):
    """The simulated board did not start or stopped unexpectedly (the message names the log)."""


def board_top(model, config, clocks_per_bit=DEFAULT_CLOCKS_PER_BIT, timeout_cycles=DEFAULT_TIMEOUT_CYCLES,
              mode="window"):
    """The BoardTop the simulation runs (`mode` "window" or "stream")."""
    from ternkws.hw.board_core import BoardTop
    return BoardTop(model, config, SIM_CLOCK_HZ, SIM_CLOCK_HZ // clocks_per_bit,
                    timeout=timeout_cycles / SIM_CLOCK_HZ, mode=mode)


class BoardSim:
    """Context manager: start the simulated board, yield a connected pyserial port, stop it on exit.

    model: a golden.checkpoint.Model (saved to a temporary checkpoint if it has no file); config: an
    AcceleratorConfig. log: where the simulation's output goes (default: a temporary file, kept and named
    in errors). start_timeout: seconds allowed for conversion, Verilator build and start.
    progress: a golden.progress.Progress: while the board starts, the step the background process is in
    (Verilog, Verilator build or cached build, simulator start) with the elapsed time, then one line.
    `stats` (after exit): bytes each way, simulated time, frame log (from the testbench).
    """

    def __init__(self, model, config, *, clocks_per_bit=DEFAULT_CLOCKS_PER_BIT,
                 timeout_cycles=DEFAULT_TIMEOUT_CYCLES, simulator="verilator", log=None, start_timeout=1800,
                 progress=None, mode="window"):
        self.model, self.config, self.mode = model, config, mode
        self.progress = progress or quiet()
        self.clocks_per_bit, self.timeout_cycles = clocks_per_bit, timeout_cycles
        self.simulator = simulator
        self.start_timeout = start_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="ternkws-board-")
        tmp = Path(self._tmp.name)
        self._own_log = not log
        if log:
            self.log_path = Path(log)
        else:
            fd, name = tempfile.mkstemp(prefix="ternkws-board-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self._port_file, self._stats_file = tmp / "port", tmp / "stats.json"
        self._proc = self._port = None
        self.stats = None

    def _checkpoint(self):
        if self.model.path and Path(self.model.path).is_file():
            return str(self.model.path)
        from ternkws.golden.checkpoint import save
        model = copy.copy(self.model)
        return str(save(model, Path(self._tmp.name) / "model.npz"))

    def _log_tail(self, lines=15):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def start(self):
        import serial
        from dataclasses import asdict
        cfg = asdict(self.config)
        cmd = [sys.executable, "-m", "ternkws.sim.board_sim", "--model", self._checkpoint(), "--config", json.dumps(cfg),
               "--port-file", str(self._port_file), "--stats", str(self._stats_file),
               "--clocks-per-bit", str(self.clocks_per_bit), "--timeout-cycles", str(self.timeout_cycles),
               "--simulator", self.simulator, "--mode", self.mode]
        with open(self.log_path, "w") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        t0 = time.monotonic()
        deadline = t0 + self.start_timeout
        step, steps, tail = "starting Python", [], LogTail(self.log_path)
        while not self._port_file.is_file():
            for line in tail.lines():
                if line.startswith(PROGRESS_MARK):
                    # the step without the elapsed time its own heartbeat adds: "... (12 s)"
                    step = re.sub(r" \(\d[^()]*\)$", "", line[len(PROGRESS_MARK):].strip())
                    steps.append(step)
            elapsed = time.monotonic() - t0
            if elapsed >= QUIET_START_S:       # a cached start takes a second or two: no status needed
                self.progress.status(f"starting the simulated board: {step} ({format_seconds(elapsed)})",
                                     key=("board_sim", step))
            if self._proc.poll() is not None:
                raise SimulationError(f"the simulated board stopped before it listened (exit code "
                                      f"{self._proc.returncode}); log {self.log_path}:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self._kill()
                raise SimulationError(f"the simulated board did not start within {self.start_timeout} s; "
                                      f"log {self.log_path}")
            time.sleep(0.1)
        port = int(self._port_file.read_text())
        self._port = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.05)
        built = next((s for s in steps if " model built in " in s or re.search(r"cached \w+ build", s)), "")
        built = re.sub(r" \(/[^()]*\)$", "", built)     # without the build folder
        self.progress.line(f"simulated board listening on 127.0.0.1:{port} after "
                           f"{format_seconds(time.monotonic() - t0)}" + (f" ({built})" if built else ""))
        return self._port

    def _kill(self):
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)     # the process group this object started
            except ProcessLookupError:
                pass
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()

    def stop(self, wait=120):
        """Close the connection (the testbench then ends) and reap the process; returns the stats."""
        if self._port is not None:
            self._port.close()
            self._port = None
        if self._proc is not None:
            try:
                self._proc.wait(wait)
            except subprocess.TimeoutExpired:
                self._kill()
            if self._stats_file.is_file():
                self.stats = json.loads(self._stats_file.read_text())
            code, self._proc = self._proc.returncode, None
            if code not in (0, None, -signal.SIGTERM):
                self._tmp.cleanup()
                raise SimulationError(f"the simulated board ended with exit code {code}; log {self.log_path}:\n"
                                      f"{self._log_tail()}")
        self._tmp.cleanup()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)      # kept only when something went wrong
        return self.stats

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self._kill()
            self._tmp.cleanup()
            raise

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            if self._port is not None:
                self._port.close()
                self._port = None
            self._kill()
            self._tmp.cleanup()
            return False
        self.stop()
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve the simulated board on a localhost TCP port.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True, help="JSON: name, mixer_lanes, dw_lanes")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--stats")
    parser.add_argument("--clocks-per-bit", type=int, default=DEFAULT_CLOCKS_PER_BIT)
    parser.add_argument("--timeout-cycles", type=int, default=DEFAULT_TIMEOUT_CYCLES)
    parser.add_argument("--simulator", default="verilator")
    parser.add_argument("--mode", default="window", choices=("window", "stream"))
    args = parser.parse_args(argv)

    from ternkws.golden.checkpoint import load
    from ternkws.hw.accelerator import AcceleratorConfig

    from .cocotb_runner import run_cocotb

    model = load(args.model)
    config = AcceleratorConfig(**json.loads(args.config))
    # Progress goes to the log (stdout) as marked plain lines; BoardSim.start() shows the newest.
    progress = Progress(sys.stdout, prefix=PROGRESS_MARK, tty=False, interval=2.0)
    progress.line("elaborating BoardTop, converting it to Verilog")
    top = board_top(model, config, args.clocks_per_bit, args.timeout_cycles, args.mode)
    run_cocotb(top, "ternkws.sim.tb_board", name="ternkws_board" if args.mode == "window" else "ternkws_stream_board", simulator=args.simulator, progress=progress,
               params={"port_file": args.port_file, "stats": args.stats, "clocks_per_bit": args.clocks_per_bit})
    return 0


if __name__ == "__main__":
    sys.exit(main())
