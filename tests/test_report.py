"""The summary report from fixture build reports (boards/report.py, `ternkws report`)."""

import json

import pytest

from ternkws.boards.report import summarize, summary_markdown, write_summary
from ternkws.cli import main


def _report(board, variant, family, lc, dsp, bram, spram, fmax, cycles, bits, fits=True, overflow=None):
    cap = {"ice40": dict(logic_cells=5280, ffs=5280, dsp=8, bram=30, spram=4),
           "ecp5": dict(logic_cells=83640, ffs=83640, dsp=156, bram=208, spram=0)}[family]
    used = dict(logic_cells=lc, ffs=lc // 3, dsp=dsp, bram=bram, spram=spram)
    r = {"board": board, "variant": variant, "family": family, "fits": fits,
         "board_clock_mhz": 12.0 if family == "ice40" else 25.0,
         "model": {"id": "abcd1234", "mixer": "ternary" if variant == "ternary" else "learned", "trained": True, "note": ""},
         "stored_weight_bits": {"total": bits}, "baseline_stored_weight_bits": 617_856,
         "cycles_per_window": cycles}
    if fits:
        r.update(resources={k: {"used": used[k], "capacity": cap[k]} for k in cap}, fmax_mhz=fmax,
                 timing_met_at_board_clock=fmax >= r["board_clock_mhz"],
                 windows_per_s_at_fmax=round(fmax * 1e6 / cycles, 2))
    else:
        r.update(resources={"ffs": {"used": 1000, "capacity": cap["ffs"]}}, fmax_mhz=None,
                 windows_per_s_at_fmax=None, error="nextpnr-ice40: the design does not fit", overflow=overflow)
    return r


@pytest.fixture
def builds(tmp_path):
    reps = {
        "icebreaker": _report("icebreaker", "ternary", "ice40", 3904, 5, 30, 4, 27.3, 1_075_246, 93_568),
        "icebreaker-stored": _report("icebreaker", "stored", "ice40", 0, 0, 0, 0, 0, 1_075_246, 617_856, fits=False,
                                     overflow={"ICESTORM_RAM": {"used": 158, "available": 30, "over": 128,
                                                                "percent": 526.7}}),
        "ulx3s-85f": _report("ulx3s-85f", "ternary", "ecp5", 20000, 18, 40, 0, 50.0, 147_474, 93_568),
    }
    for folder, r in reps.items():
        (tmp_path / "build" / folder).mkdir(parents=True)
        (tmp_path / "build" / folder / "report.json").write_text(json.dumps(r))
    return tmp_path


def test_summary_figures(builds):
    s = summarize(builds / "build", builds / "nope.json")
    up = s["fpgas"]["iCE40 UP5K"]["variants"]
    assert up["ternary"]["logic_cells"] == 3904
    assert up["ternary"]["ram_bits"] == 30 * 4096 + 4 * 262144
    assert up["stored"]["fits"] is False
    assert s["fpgas"]["ECP5-85F"]["variants"]["ternary"]["ram_bits"] == 40 * 18432
    assert s["ratios"]["ecp5_over_up5k_windows_per_s"] == round(round(50e6 / 147_474, 2) / round(27.3e6 / 1_075_246, 2), 2)
    assert s["ratios"]["ternary_over_stored_weight_bits"] == round(93_568 / 617_856, 4)
    assert s["missing"] == [{"board": "ulx3s-85f", "variant": "stored",
                             "path": str(builds / "build" / "ulx3s-85f-stored" / "report.json"),
                             "command": "make bitstream BOARD=ulx3s-85f VARIANT=stored"}]


def test_summary_markdown(builds):
    md = summary_markdown(summarize(builds / "build", builds / "nope.json"))
    assert "Accuracy: not measured yet" in md
    assert "| logic cells | 3,904 / 5,280 (74%) | — |" in md
    assert "stored: **does not fit** — ICESTORM_RAM 158/30 (128 over)" in md
    assert "| windows/s at Fmax | 25.4 | — |" in md
    assert "| ECP5-85F / UP5K windows/s (ternary, each at its Fmax) | 13.3 | >= 10 |" in md
    assert "| ternary / stored weight bits | 15.1% | <= 16% |" in md
    assert "- ulx3s-85f stored: " in md and "`make bitstream BOARD=ulx3s-85f VARIANT=stored`" in md
    assert "| logic cells | 20,000 / 83,640 (24%) | not built |" in md


def test_accuracy_table(builds):
    acc = builds / "accuracy.json"
    acc.write_text(json.dumps([{"model": "ternary", "float": 0.812, "int8": 0.813},
                               {"model": "learned", "float": 0.85, "int8": 0.849}]))
    md = summary_markdown(summarize(builds / "build", acc))
    assert "| model | float | int8 |" in md
    assert "| ternary | 0.812 | 0.813 |" in md
    assert "| learned | 0.85 | 0.849 |" in md


def test_report_command(builds, monkeypatch, capsys):
    monkeypatch.chdir(builds)
    assert main(["report", "--out", "out", "--accuracy", "missing.json"]) == 0
    for name in ("summary.md", "summary.json", "summary.png"):
        assert (builds / "out" / name).stat().st_size > 0
    assert (builds / "out" / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((builds / "out" / "summary.json").read_text())
    assert data["fpgas"]["iCE40 UP5K"]["variants"]["ternary"]["fmax_mhz"] == 27.3
    assert "wrote out/summary.md" in capsys.readouterr().out


def test_report_without_builds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--out", "r"]) == 0
    md = (tmp_path / "r" / "summary.md").read_text()
    assert md.count("No build report yet.") == 2
    assert "`make bitstream BOARD=icebreaker VARIANT=ternary`" in md


def test_report_keeps_committed_figures_when_builds_are_missing(builds, monkeypatch, capsys):
    """A fresh clone has no build/: `ternkws report` keeps the committed figures, says when they were
    measured, and lists nothing as missing that was measured once."""
    monkeypatch.chdir(builds)
    assert main(["report", "--out", "reports"]) == 0      # the 'committed' summary, from the builds
    committed = json.loads((builds / "reports" / "summary.json").read_text())
    import shutil
    shutil.rmtree(builds / "build")
    capsys.readouterr()
    assert main(["report", "--out", "reports"]) == 0
    again = json.loads((builds / "reports" / "summary.json").read_text())
    for fpga in ("iCE40 UP5K", "ECP5-85F"):
        for variant, figures in committed["fpgas"][fpga]["variants"].items():
            kept = again["fpgas"][fpga]["variants"][variant]
            assert {k: kept[k] for k in ("logic_cells", "fmax_mhz", "cycles")} == \
                   {k: figures[k] for k in ("logic_cells", "fmax_mhz", "cycles")}
            assert kept["source"]["kept"] is True and kept["source"]["from"].startswith("build/")
    assert [m["variant"] for m in again["missing"]] == ["stored"]     # ulx3s-85f stored: never built
    md = (builds / "reports" / "summary.md").read_text()
    assert "| logic cells | 3,904 / 5,280 (74%) | — |" in md
    assert "kept from the committed summary: measured" in md


def test_accuracy_json_of_the_report_module(builds):
    acc = builds / "accuracy.json"
    acc.write_text(json.dumps({"data": "data/synth", "split": "test", "date": "2026-12-01T10:00:00+00:00",
                               "commit": "abc1234", "models": [
                                   {"model": "default", "topology": "3x1x64", "mixer": "ternary",
                                    "trained_parameters": 9356, "test_n": 2004, "accuracy_float": 0.8124,
                                    "accuracy_int8": 0.8134}]}))
    md = summary_markdown(summarize(builds / "build", acc))
    assert "| default | 3x1x64 | ternary | 9,356 | 2,004 | 81.24% | 81.34% |" in md
    assert "measured 2026-12-01 at commit abc1234" in md


def test_no_machine_path_in_committed_reports():
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    files = [*sorted((root / "reports").glob("*.md")), *sorted((root / "reports").glob("*.json")),
             root / "README.md", root / "golden" / "SPEC.md", root / "golden" / "DATA.md",
             root / "boards" / "PROTOCOL.md"]
    bad = [f"{f.relative_to(root)}: {m.group(0)}" for f in files if f.exists()
           for m in re.finditer(r"(?<![\w.])/(?:work|home|root|tmp|Users)/[^\s\"'`)]*", f.read_text())]
    assert not bad, bad
