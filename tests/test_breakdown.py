"""boards/breakdown.py: per-module resources from a small hand-made nextpnr `--write` netlist and yosys
netlist (no tool runs); the real board build's breakdown is in tests/test_build.py's slow test."""

import json

import pytest

from ternkws.boards import build as board_build
from ternkws.boards.breakdown import breakdown, breakdown_markdown

SRC = "/x/ternkws/hw/"


def _scope(module_src):
    return {"type": "$scopeinfo", "attributes": {"module_src": module_src}}


# The yosys netlist: the hierarchy and the file (and elaborate() line) that built each instance.
NETLIST = {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"}, "cells": {
    "cd_sync": _scope("/v/amaranth/vendor/_siliconblue.py:368"),
    "pin_led_0": _scope("/v/amaranth/build/res.py:37"),
    "pin_led_0.buf": _scope("/v/amaranth/vendor/_siliconblue.py:455"),
    "top": _scope(SRC + "board_core.py:109"),
    "top.uart_rx": _scope(SRC + "uart.py:79"),
    "top.uart_tx": _scope(SRC + "uart.py:148"),
    "top.core": _scope(SRC + "board_core.py:63"),
    "top.core.link": _scope(SRC + "host_link.py:142"),
    "top.core.link.parser": _scope(SRC + "request_parser.py:64"),
    "top.core.link.executor": _scope(SRC + "request_executor.py:107"),
    "top.core.accelerator": _scope(SRC + "accelerator.py:83"),
    "top.core.accelerator.classifier": _scope(SRC + "classifier.py:60"),
    "top.core.accelerator.to_dw": _scope(SRC + "regroup.py:37"),
    "top.core.accelerator.to_mixer": _scope(SRC + "regroup.py:37"),
    "top.core.accelerator.post": _scope(SRC + "post_op.py:154"),
    "top.core.accelerator.post.x": {"type": "SB_LUT4", "attributes": {}},    # not a scope
}, "netnames": {
    # a flattened net keeps its names: the accelerator's `buf` is also to_mixer's `o`
    "top.core.accelerator.buf": {"bits": [900, 901]},
    "top.core.accelerator.to_mixer.o": {"bits": [901]},
    "top.core.accelerator.load": {"bits": [902]},
}}}}


def _lc(ff=False, src=None, conns=None):
    cell = {"type": "ICESTORM_LC", "parameters": {"DFF_ENABLE": "1" if ff else "0"},
            "attributes": {"src": src} if src else {}, "connections": conns or {}}
    return cell


def _cell(kind, src=None):
    return {"type": kind, "parameters": {}, "attributes": {"src": src} if src else {}, "connections": {}}


ROUTED_CELLS = {
    # named by their own module
    "top.core.link.parser.crc_SB_DFFESR_Q_DFFLC": _lc(True, SRC + "request_parser.py:70|/share/ice40/ff_map.v:5"),
    "top.core.link.parser.crc_SB_LUT4_O_LC": _lc(False, "/share/ice40/cells_map.v:17.34-18.52"),
    "top.core.link.executor.count_SB_DFFESR_Q_LC": _lc(True, SRC + "request_executor.py:121"),
    # a net between parser and executor named after the executor, the register is the parser's
    "top.core.link.executor.payload__payload_SB_DFFESR_Q_DFFLC": _lc(True, SRC + "request_parser.py:66"),
    # the classifier's accumulator named after the accelerator's forwarded port
    "top.core.accelerator.o__payload$51_SB_DFFESR_Q_DFFLC": _lc(True, SRC + "classifier.py:90"),
    "top.core.accelerator.o__payload$51_SB_DFFESR_Q_1_DFFLC": _lc(True, SRC + "classifier.py:91"),
    # accelerator glue; a memory is not an instance: its address logic is the accelerator's
    "top.core.accelerator.seq_state_SB_LUT4_I3_LC": _lc(False, SRC + "accelerator.py:150"),
    "top.core.accelerator.buf0.0.0_ADDRESS_11_SB_LUT4_O_LC": _lc(),
    # regroup.py builds two instances at equal distance: the name decides (the accelerator) unless a
    # net of the name reaches one of them
    "top.core.accelerator.load_SB_LUT4_O_LC": _lc(False, SRC + "regroup.py:50"),
    "top.core.accelerator.buf_SB_DFFESR_Q_DFFLC": _lc(True, SRC + "regroup.py:47"),
    "top.core.accelerator.to_dw.phase_SB_LUT4_O_LC": _lc(False, SRC + "regroup.py:50"),
    # uart.py holds two classes: the line picks UARTTx (elaborate at 148) over UARTRx (79)
    "pin_uart_0__tx.buf.buf0_D_OUT_0_SB_LUT4_O_I3_SB_DFFESR_Q_D_SB_LUT4_O_LC": _lc(True, SRC + "uart.py:150",
                                                                                  {"I0": [104]}),
    "top.uart_rx.timer_SB_DFFSR_Q_D_SB_LUT4_O_LC": _lc(True, SRC + "uart.py:90"),
    # the executor's reply-byte multiplexer: named by the executor, registered in uart_tx
    "top.core.link.executor.reply_SB_LUT4_O_LC": _lc(conns={"O": [104]}),
    # LED logic named after the pin; the clock domain's reset timer
    "pin_led_0.buf.buf0_D_OUT_0_SB_LUT4_O_LC": _lc(),
    "cd_sync.timer_SB_DFFE_Q_D_SB_LUT4_O_LC": _lc(True, "/v/amaranth/vendor/_siliconblue.py:410"),
    # nextpnr's own cells: a carry feed-in beside the parser, the constant driver, an orphan
    "$nextpnr_ICESTORM_LC_0": _lc(conns={"COUT": [100], "I1": [101]}),
    "$PACKER_GND": _lc(conns={"O": [102]}),
    "$nextpnr_ICESTORM_LC_1": _lc(conns={"I1": [102]}),
    # memories and DSPs
    "top.core.accelerator.post.consts.0.0_RAM": _cell("ICESTORM_RAM", "/share/ice40/brams_map.v:204"),
    "top.core.accelerator.post.consts.0.1_RAM": _cell("ICESTORM_RAM"),
    "top.core.accelerator.post.acc_res1_SB_MAC16_A_DSP": _cell("ICESTORM_DSP", SRC + "post_op.py:238"),
    "top.core.accelerator.buf0.0.0_RAM": _cell("ICESTORM_SPRAM"),
    "top.core.link.executor.memory.0.0_RAM": _cell("ICESTORM_RAM"),
    # not counted: I/O and global buffers
    "pin_led_0.buf.buf0": _cell("SB_IO"),
    "$gbuf_x": _cell("SB_GB"),
}
ROUTED_CELLS["top.core.link.parser.crc_SB_LUT4_O_LC"]["connections"] = {"CIN": [100], "O": [103]}
ROUTED_CELLS["top.core.link.parser.crc_SB_DFFESR_Q_DFFLC"]["connections"] = {"Q": [101]}
ROUTED = {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"}, "cells": ROUTED_CELLS,
                              "netnames": {"a": {"bits": [100]}, "b": {"bits": [101]},
                                           "$PACKER_GND_NET": {"bits": [102]}}}}}


def _rows(bd):
    return {r["path"]: r for r in bd["modules"]}


def test_every_cell_lands_in_one_row_and_the_rows_add_up():
    bd = breakdown(ROUTED, NETLIST, "ice40")
    assert bd["total"] == {"logic_cells": 19, "ffs": 9, "bram": 3, "dsp": 1, "spram": 1}
    assert bd["check"]["rows_sum_equals_total"] is True
    rows = _rows(bd)
    assert rows[""]["subtree"]["logic_cells"] + rows["(unattributed)"]["subtree"]["logic_cells"] == 19
    own = sum(r["own"].get("logic_cells", 0) for r in bd["modules"])
    assert own == 19
    assert bd["check"]["name_rows_sum_equals_total"] is True


def test_attribution_by_source_name_and_fanout():
    bd = breakdown(ROUTED, NETLIST, "ice40")
    rows = _rows(bd)

    def own(path, res="logic_cells"):
        return rows[path]["own"].get(res, 0)

    # parser: its 2 named cells + the executor-named register (source) + the carry feed-in (neighbours)
    assert own("top.core.link.parser") == 4 and own("top.core.link.parser", "ffs") == 2
    assert own("top.core.link.executor") == 1 and rows["top.core.link.executor"]["subtree"]["bram"] == 1
    assert own("top.core.accelerator.classifier") == 2 and own("top.core.accelerator.classifier", "ffs") == 2
    # glue + memory address + the regroup.py tie (kept by name)
    assert own("top.core.accelerator") == 3
    assert own("top.core.accelerator.to_dw") == 1
    assert own("top.core.accelerator.to_mixer") == 1 and own("top.core.accelerator.to_mixer", "ffs") == 1
    assert own("top.uart_rx") == 1
    assert own("pins") == 1 and rows["pins"]["source"] == "I/O buffers"
    assert own("cd_sync") == 1
    assert own("") == 1                                           # $PACKER_GND
    assert rows["(unattributed)"]["own"] == {"logic_cells": 1}    # only constant nets around it
    assert bd["unattributed_cells"] == ["$nextpnr_ICESTORM_LC_1"]
    post = rows["top.core.accelerator.post"]
    assert post["subtree"] == {"bram": 2, "dsp": 1} and post["source"] == "hw/post_op.py"
    acc = rows["top.core.accelerator"]["subtree"]
    assert acc == {"logic_cells": 7, "ffs": 3, "bram": 2, "dsp": 1, "spram": 1}
    assert rows["top.core.link"]["subtree"] == {"logic_cells": 5, "ffs": 3, "bram": 1}
    assert bd["by_source"] == 13 and bd["by_fanout"] == 2 and bd["by_neighbours"] == 0
    # the executor's multiplexer feeds uart_tx's register: there by fanout, in the executor by name
    assert own("top.uart_tx") == 2 and rows["top.uart_tx"]["logic_cells_by_name"] == 1
    assert rows["top.core.link.executor"]["logic_cells_by_name"] == 2
    assert rows["top.core.accelerator"]["logic_cells_by_name"] == 7
    assert bd["placed_elsewhere_by_name"] == 1


def test_rows_are_depth_first_with_parents_before_children():
    bd = breakdown(ROUTED, NETLIST, "ice40")
    paths = [r["path"] for r in bd["modules"]]
    assert paths[0] == "" and paths[-1] == "(unattributed)"
    for i, p in enumerate(paths[1:-1], 1):
        parent = p.rsplit(".", 1)[0] if "." in p else ""
        assert parent in paths[:i], f"{p} listed before its parent"


def test_without_the_yosys_netlist_names_alone_decide():
    bd = breakdown(ROUTED, None, "ice40")
    rows = _rows(bd)
    assert bd["check"]["rows_sum_equals_total"] is True
    assert bd["by_source"] == 0
    assert rows["top.core.link.executor"]["own"]["logic_cells"] == 2


def test_ecp5_cell_kinds():
    routed = {"modules": {"top": {"cells": {
        "top.core.a_TRELLIS_COMB": {"type": "TRELLIS_COMB", "attributes": {}, "connections": {}},
        "top.core.a_TRELLIS_FF": {"type": "TRELLIS_FF", "attributes": {}, "connections": {}},
        "top.core.m.0.0": {"type": "DP16KD", "attributes": {}, "connections": {}},
        "top.core.mul": {"type": "MULT18X18D", "attributes": {}, "connections": {}},
        "top.core.r": {"type": "TRELLIS_RAMW", "attributes": {}, "connections": {}},
    }, "netnames": {}}}}
    netlist = {"modules": {"top": {"cells": {"top": _scope(SRC + "board_core.py:1"),
                                             "top.core": _scope(SRC + "board_core.py:2")}}}}
    bd = breakdown(routed, netlist, "ecp5")
    assert bd["total"] == {"logic_cells": 1, "ffs": 1, "bram": 1, "dsp": 1, "lutram": 1}
    assert _rows(bd)["top.core"]["own"] == bd["total"]


def test_markdown_table_and_build_report(tmp_path):
    bd = breakdown(ROUTED, NETLIST, "ice40")
    md = "\n".join(breakdown_markdown(bd))
    assert "| module | source | LC | % of LC | own LC | LC by name | FF | BRAM | DSP | SPRAM |" in md
    assert "| · · top.core.link | hw/host_link.py | 5 | 26.3 | 0 | 6 | 3 | 1 | 0 | 0 |" in md
    assert "the rows add up to the totals" in md
    # the build report carries it (JSON and markdown)
    report = {"board": "icebreaker", "variant": "ternary", "device": "up5k", "config": "up5k", "mixer_lanes": 8,
              "dw_lanes": 2, "board_clock_mhz": 12.0, "baud": 115200, "fits": True,
              "model": {"path": None, "id": "x", "mixer": "ternary", "trained": True},
              "stored_weight_bits": {"depthwise": 1, "bn": 1, "classifier": 1, "pointwise": 0, "total": 3},
              "baseline_stored_weight_bits": 30, "checks": [], "breakdown": bd}
    board_build.write_report(report, tmp_path)
    assert "## Resources by module" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["breakdown"]["total"]["logic_cells"] == 19
    report["breakdown"] = {"error": "no per-module breakdown: OSError: gone"}
    assert "no per-module breakdown: OSError: gone." in board_build.report_markdown(report)


def test_files_on_disk(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(ROUTED))
    (tmp_path / "n.json").write_text(json.dumps(NETLIST))
    assert breakdown(tmp_path / "r.json", tmp_path / "n.json")["total"]["logic_cells"] == 19
    with pytest.raises(OSError):
        breakdown(tmp_path / "missing.json")
