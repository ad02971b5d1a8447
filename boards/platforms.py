"""The boards ternkws builds for, and the wrapper that puts boards/top.py's BoardTop on their pins.

    BOARDS[name] -> Board   platform class (amaranth-boards), toolchain device (boards/toolchain.py),
                            accelerator configuration (hw/accelerator.py CONFIGS), programmer
    get_board(name)         the Board, or a UserError listing the choices
    BoardWrapper(board, model)
                            BoardTop on the board's UART 0 (rx/tx) and as many of its LEDs as BoardTop
                            drives usefully; the `sync` domain is the platform's default clock (no PLL:
                            the design's Fmax, not the oscillator, limits the rate, and the iCEBreaker's
                            12 MHz and the ULX3S's 25 MHz are both at or below it -- see the build report)

OrangeCrab (amaranth_boards.orangecrab_r0_2) is not offered: the board has no UART resource (its only
host port is USB, which would need a USB-CDC core) and it is programmed over DFU.
"""

import importlib
from dataclasses import dataclass

from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module

from ternkws.golden.errors import UserError

__all__ = ["Board", "BOARDS", "get_board", "BoardWrapper", "DEFAULT_BAUD", "STREAM_BAUD", "default_baud"]

DEFAULT_BAUD = 115200
# The stream board needs about 69 kbit/s host -> board at 100 frames/s (boards/PROTOCOL.md, "Baud budget"):
# 115200 baud leaves 1.7x, 1 Mbaud 14x (12 clocks a bit at the iCEBreaker's 12 MHz, 0% rate error; the
# FT2232H makes it exactly). 3 Mbaud (4 clocks a bit) would also work; 1 M keeps 12 samples a bit.
STREAM_BAUD = 1_000_000


def default_baud(mode):
    return STREAM_BAUD if mode == "stream" else DEFAULT_BAUD


@dataclass(frozen=True)
class Board:
    name: str
    platform: str        # "module:Class" in amaranth_boards
    device: str          # boards/toolchain.py device name
    config: str          # hw/accelerator.py CONFIGS key
    programmer: str      # "iceprog" or "openfpgaloader"
    description: str

    @property
    def family(self):
        return "ice40" if self.device == "up5k" else "ecp5"

    @property
    def bitstream_suffix(self):
        return ".bin" if self.family == "ice40" else ".bit"

    def platform_class(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)

    def make_platform(self):
        platform = self.platform_class()()
        if self.name == "icebreaker":
            # The break-off PMOD (5 LEDs, 3 buttons) ships attached: LEDs 2-6 show the class index.
            platform.add_resources(platform.break_off_pmod)
        return platform

    @property
    def clk_freq(self):
        """The default clock of the board in Hz."""
        return self.make_platform().default_clk_frequency


def _ulx3s(size):
    return Board(f"ulx3s-{size}f", f"amaranth_boards.ulx3s:ULX3S_{size}F_Platform", f"ecp5-{size}f", "ecp5",
                 "openfpgaloader", f"ULX3S with the ECP5 LFE5U-{size}F, 25 MHz, FTDI UART")


BOARDS = {b.name: b for b in (
    Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "up5k", "up5k", "iceprog",
          "iCEBreaker with the iCE40 UP5K, 12 MHz, FTDI UART"),
    _ulx3s(85), _ulx3s(45), _ulx3s(25), _ulx3s(12),
)}


def get_board(name):
    if isinstance(name, Board):
        return name
    key = str(name).strip().lower()
    if key not in BOARDS:
        raise UserError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}")
    return BOARDS[key]


def _request_leds(platform):
    leds = []
    while True:
        try:
            leds.append(platform.request("led", len(leds)))
        except ResourceError:
            return leds


class BoardWrapper(Elaboratable):
    """BoardTop connected to the board's UART and LEDs (LED inversion is the platform's: PinsN)."""

    def __init__(self, board, model, config=None, *, baud=None, mode="window"):
        from ternkws.hw.board_core import MODES
        from ternkws.hw.accelerator import CONFIGS

        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.board = get_board(board)
        self.model = model
        self.mode = mode
        self.config = config if config is not None else CONFIGS[self.board.config]
        self.baud = baud if baud is not None else default_baud(mode)
        self.clk_freq = self.board.clk_freq
        # 2 status LEDs + the class index bits: more LEDs than that stay off, fewer show a prefix.
        self.useful_leds = 2 + max(model.topology.n_classes - 1, 1).bit_length()
        self.top = None

    def elaborate(self, platform):
        from ternkws.hw.board_core import BoardTop

        m = Module()
        uart = platform.request("uart", 0)
        leds = _request_leds(platform)
        n_leds = max(1, min(len(leds), self.useful_leds))
        m.submodules.top = top = BoardTop(self.model, self.config, self.clk_freq, self.baud, n_leds=n_leds,
                                          mode=self.mode)
        self.top = top
        m.d.comb += [top.rx.eq(uart.rx.i), uart.tx.o.eq(top.tx)]
        for n, led in enumerate(leds[:n_leds]):
            m.d.comb += led.o.eq(top.leds[n])
        return m
