"""cocotb testbench: the simulated board (ternkws.hw.board_core.BoardTop) behind a localhost TCP socket.

A host connects with `serial.serial_for_url("socket://127.0.0.1:PORT")` and speaks the UART protocol as
to a real board: each byte it sends is driven onto the `rx` pin bit by bit (8N1, `clocks_per_bit` clocks
a bit), and each character on the `tx` pin is read at mid-bit and sent back over the socket.

Time only moves when something is in flight, so the simulation costs nothing while the host thinks:
- host bytes queued: drive them (one Timer per run of equal bits, no Python per clock cycle);
- the board's `idle` low (a frame being parsed, a reply pending, a classification running): let the
  clock run, waking at `idle` rising or every `slice_cycles`, after a short wall-clock look at the socket
  (so a frame split by TCP does not hit the board's inter-byte timeout);
- otherwise: block on the socket (simulated time stands still).
The test ends when the host closes the connection.

Parameters (TERNKWS_TB_PARAMS): port_file (the listening port is written there once the clock runs),
clocks_per_bit, stats (JSON path written at the end: bytes each way, simulated time, frame log),
slice_cycles (default 20000), accept_timeout (seconds, default 600).
"""

import json
import os
import select
import socket

import cocotb
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from ternkws.golden.protocol import FrameDecoder
from ternkws.sim.cocotb_runner import params
from ternkws.sim.streams import CLOCK_PERIOD_NS, start

SPLIT_FRAME_WAIT = 0.005      # seconds of wall clock to wait for the rest of a frame before time moves


def _runs(byte):
    """(level, bit count) runs of one 8N1 character: start, data LSB first, stop."""
    bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
    runs = []
    for bit in bits:
        if runs and runs[-1][0] == bit:
            runs[-1][1] += 1
        else:
            runs.append([bit, 1])
    return runs


class Bridge:
    def __init__(self, dut, conn, p):
        self.dut, self.conn = dut, conn
        self.bit_ns = int(p["clocks_per_bit"]) * CLOCK_PERIOD_NS
        self.slice_ns = int(p.get("slice_cycles", 20000)) * CLOCK_PERIOD_NS
        self.bytes_in = self.bytes_out = 0
        self.frames = []                 # [sim ns, "host"|"board", command] at each complete frame
        self.framing_errors = 0
        self._rx_decoder, self._tx_decoder = FrameDecoder(), FrameDecoder()

    def _log(self, decoder, data, who):
        for command, _, _ in decoder.feed(data):
            self.frames.append([get_sim_time("ns"), who, command])

    async def transmit(self):
        """Read characters off the tx pin at mid-bit and send them to the host."""
        dut = self.dut
        while True:
            await FallingEdge(dut.tx)
            await Timer(self.bit_ns // 2, unit="ns")
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, unit="ns")
                byte |= int(dut.tx.value) << i
            await Timer(self.bit_ns, unit="ns")
            if not int(dut.tx.value):
                self.framing_errors += 1
            self.conn.sendall(bytes([byte]))
            self.bytes_out += 1
            self._log(self._tx_decoder, bytes([byte]), "board")

    async def drive(self, data):
        for byte in data:
            for level, count in _runs(byte):
                self.dut.rx.value = level
                await Timer(count * self.bit_ns, unit="ns")
        self.bytes_in += len(data)
        self._log(self._rx_decoder, data, "host")
        # Let the receiver finish the last stop bit before `idle` is trusted again.
        await Timer(2 * self.bit_ns, unit="ns")

    def _recv(self, wait):
        """Bytes from the host (b"" once it closed), or None if none came within `wait` seconds
        (None: block until some come)."""
        while True:
            ready, _, _ = select.select([self.conn], [], [], 1.0 if wait is None else wait)
            if ready:
                try:
                    return self.conn.recv(65536)
                except ConnectionError:
                    return b""
            if wait is not None:
                return None

    async def serve(self):
        dut = self.dut
        while True:
            if int(dut.idle.value):
                data = self._recv(None)            # nothing in flight: simulated time stands still
            else:
                data = self._recv(SPLIT_FRAME_WAIT)
                if data is None:
                    await First(Timer(self.slice_ns, unit="ns"), RisingEdge(dut.idle))
                    continue
            if not data:
                return
            await self.drive(data)


@cocotb.test()
async def bridge(dut):
    p = params()
    dut.rx.value = 1
    await start(dut)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(float(p.get("accept_timeout", 600)))
    port_file = p["port_file"]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.getsockname()[1]))
    os.replace(port_file + ".tmp", port_file)
    conn, _ = server.accept()
    server.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    link = Bridge(dut, conn, p)
    transmitter = cocotb.start_soon(link.transmit())
    try:
        await link.serve()
    finally:
        transmitter.cancel()
        conn.close()
        if p.get("stats"):
            with open(p["stats"], "w") as f:
                json.dump({"bytes_from_host": link.bytes_in, "bytes_to_host": link.bytes_out,
                           "sim_ns": get_sim_time("ns"), "clock_period_ns": CLOCK_PERIOD_NS,
                           "framing_errors": link.framing_errors, "frames": link.frames}, f)
    assert link.framing_errors == 0, f"{link.framing_errors} characters from the board had a low stop bit"
