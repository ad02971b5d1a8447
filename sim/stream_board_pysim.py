"""The stream board's core (hw/board_core.py StreamBoardCore, byte streams, no UART) in the Amaranth
simulator, behind a pyserial-like port, so that the host client (boards/host.py Device) drives the RTL
exactly as it drives a board.

    with PysimBoardPort(core, byte_cycles=8) as port:
        device = Device(port, timeout=30, result_timeout=60)
        ...

A helper thread runs the simulation; `watch` names output signals of the core whose changes are kept
(sampled once a byte slot and once a slice of SLICE cycles: a test of the LEDs). Host bytes enter `rx` one every `byte_cycles` cycles (a UART's pace:
10 bits a byte at byte_cycles / 10 clocks a bit), reply bytes leave `tx` at the same pace. Simulated time
stands still while the core is idle and the host sends nothing (the testbench waits on the host's queue),
as in the TCP bridge of sim/tb_board.py. `damage`: indices of host writes (0 = the first) whose byte 5
gets a bit flipped on the way, as line noise would (a test of the host's recovery).
"""

import queue
import threading
import time

from amaranth.sim import Simulator

__all__ = ["PysimBoardPort"]


class PysimBoardPort:
    """A pyserial-like port (write, read(n), timeout, reset_input_buffer) on a StreamBoardCore-like
    component with rx / tx byte streams and an `idle` output."""

    SLICE = 64      # cycles run at once while the board computes and the host is quiet

    def __init__(self, core, *, byte_cycles=8, max_cycles=50_000_000, watch=(), damage=()):
        self.core = core
        self.damage, self.writes = set(damage), 0
        # {name: [(cycle, value), ...]}: each change of the watched output signals, sampled once a byte slot
        self.watch = {name: [] for name in watch}
        self.byte_cycles = byte_cycles
        self.max_cycles = max_cycles
        self.timeout = 0.05
        self._to_board = queue.Queue()
        self._from_board = bytearray()
        self._lock = threading.Condition()
        self._stop = False
        self._error = None
        self.cycles = 0
        self._thread = None

    # -- the port ---------------------------------------------------------------------------------------

    def write(self, data):
        self._check()
        data = bytearray(data)
        if self.writes in self.damage and len(data) > 5:
            data[5] ^= 0x04
        self.writes += 1
        self._to_board.put(bytes(data))
        return len(data)

    def read(self, n=1):
        end = time.monotonic() + (self.timeout or 0)
        with self._lock:
            while not self._from_board and time.monotonic() < end:
                self._check()
                self._lock.wait(max(0.0, end - time.monotonic()))
            out = bytes(self._from_board[:n])
            del self._from_board[:n]
        return out

    def reset_input_buffer(self):
        with self._lock:
            self._from_board.clear()

    def _check(self):
        if self._error is not None:
            raise OSError(f"the simulation stopped: {self._error!r}")

    # -- the simulation ---------------------------------------------------------------------------------

    def _sample(self, ctx):
        for name, changes in self.watch.items():
            value = ctx.get(getattr(self.core, name))
            if not changes or changes[-1][1] != value:
                changes.append((self.cycles, value))

    def __enter__(self):
        dut = self.core
        sim = Simulator(dut)
        sim.add_clock(1e-8)
        B = self.byte_cycles

        async def bench(ctx):
            ctx.set(dut.tx.ready, 0)
            pending = bytearray()
            while not self._stop:
                if not pending:
                    # nothing in flight: wait for the host (simulated time stands still); else just look
                    idle = ctx.get(dut.idle) and not ctx.get(dut.tx.valid)
                    try:
                        pending += self._to_board.get(timeout=0.05) if idle else self._to_board.get_nowait()
                    except queue.Empty:
                        if idle:
                            continue
                        if not ctx.get(dut.tx.valid):
                            # the board computes (or waits for the host to take a decision): run a slice
                            # of cycles in one call; a reply byte that comes meanwhile waits (not ready)
                            await ctx.tick().repeat(self.SLICE)
                            self.cycles += self.SLICE
                            self._sample(ctx)
                            continue
                self._sample(ctx)
                # one byte slot: a host byte in, a reply byte out, then byte_cycles - 1 quiet cycles
                send = bool(pending)
                ctx.set(dut.rx.valid, send)
                if send:
                    ctx.set(dut.rx.payload, pending[0])
                    del pending[0]
                take = bool(ctx.get(dut.tx.valid))
                ctx.set(dut.tx.ready, take)
                byte = ctx.get(dut.tx.payload) if take else None
                await ctx.tick()
                ctx.set(dut.rx.valid, 0)
                ctx.set(dut.tx.ready, 0)
                if B > 1:
                    await ctx.tick().repeat(B - 1)
                self.cycles += B
                if take:
                    with self._lock:
                        self._from_board.append(byte)
                        self._lock.notify_all()
                if self.cycles > self.max_cycles:
                    raise RuntimeError(f"more than {self.max_cycles} simulated cycles")

        sim.add_testbench(bench)

        def target():
            try:
                sim.run()
            except BaseException as e:      # reported to the host side by the next read / write
                self._error = e
                with self._lock:
                    self._lock.notify_all()

        self._thread = threading.Thread(target=target, name="ternkws-board-pysim", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        return False
