"""The summary report (`ternkws report`): accuracy table + ternary vs stored-weights builds per FPGA.

    summarize(build_dir="build", accuracy="reports/accuracy.json", previous="reports/summary.json")
        -> summary dict
    write_summary(summary, out="reports")  -> summary.md, summary.json, summary.png

Build figures come from build/<board>/report.json (ternary) and build/<board>-stored/report.json (the
learned-1x1 baseline), as `ternkws build` writes them, each stamped with its date and commit. A build
that is not there keeps the figures of the previous summary (`previous`, the committed one), marked with
the date and commit they were measured at, so a fresh clone's `ternkws report` never replaces a
measured figure with nothing; only what was never measured is listed with the command that makes it.
The accuracy table likewise comes from reports/accuracy.json (python -m ternkws.golden.train.report),
else the previous summary's. Nothing here runs a tool.
"""

import json
from pathlib import Path

from ternkws.golden.workspace import display_path, source_commit, utc_now

__all__ = ["FPGAS", "VARIANTS", "summarize", "write_summary", "summary_markdown", "build_folder"]

FPGAS = (("iCE40 UP5K", "icebreaker"), ("ECP5-85F", "ulx3s-85f"))
VARIANTS = ("ternary", "stored")
# Bits per block RAM / SPRAM primitive (iCE40 EBR 4 kbit, SPRAM 256 kbit; ECP5 DP16KD 18 kbit).
RAM_BITS = {"ice40": {"bram": 4096, "spram": 262144}, "ecp5": {"bram": 18432, "spram": 0}}
ROWS = (("logic cells", "logic_cells"), ("flip-flops", "ffs"), ("DSP", "dsp"), ("block RAM", "bram"),
        ("SPRAM", "spram"), ("RAM bits", "ram_bits"), ("stored weight bits", "weight_bits"),
        ("Fmax (MHz)", "fmax_mhz"), ("cycles per window", "cycles"), ("windows/s at Fmax", "windows_per_s"))


def build_folder(board, variant):
    return f"{board}{'' if variant == 'ternary' else '-' + variant}"


def _load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _figures(r):
    """The summary's figures of one build report (None where unknown)."""
    res = r.get("resources", {})

    def used(k):
        return res.get(k, {}).get("used")

    bits = RAM_BITS[r.get("family", "ice40")]
    ram = None
    if r.get("fits") and used("bram") is not None:
        ram = used("bram") * bits["bram"] + (used("spram") or 0) * bits["spram"]
    return {"fits": r.get("fits"), "logic_cells": used("logic_cells"), "ffs": used("ffs"), "dsp": used("dsp"),
            "bram": used("bram"), "spram": used("spram"), "ram_bits": ram,
            "capacity": {k: v.get("capacity") for k, v in res.items()},
            "weight_bits": r.get("stored_weight_bits", {}).get("total"),
            "baseline_weight_bits": r.get("baseline_stored_weight_bits"), "fmax_mhz": r.get("fmax_mhz"),
            "timing_met_at_board_clock": r.get("timing_met_at_board_clock"),
            "board_clock_mhz": r.get("board_clock_mhz"),
            "cycles": r.get("cycles_per_window"), "windows_per_s": r.get("windows_per_s_at_fmax"),
            "overflow": r.get("overflow", {}), "error": r.get("error"),
            "model_id": r.get("model", {}).get("id"), "model_trained": r.get("model", {}).get("trained"),
            "model_note": r.get("model", {}).get("note", "")}


def summarize(build_dir="build", accuracy="reports/accuracy.json", previous=None):
    """The summary dict; `previous`: a summary.json whose figures stand in for missing inputs (the CLI
    passes the committed reports/summary.json)."""
    build_dir = Path(build_dir)
    old = (_load(previous) if previous else None) or {}
    acc = _load(accuracy) if accuracy else None
    meta = acc if isinstance(acc, dict) else {}
    acc_source = {"from": display_path(accuracy), "date": meta.get("date"),
                  "commit": meta.get("commit")} if acc is not None else None
    if acc is None and old.get("accuracy") is not None:
        src = old.get("accuracy_source")
        acc, acc_source = old["accuracy"], {**(src if isinstance(src, dict) else {"from": src}), "kept": True}
    summary = {"generated": utc_now(), "commit": source_commit(), "accuracy": acc, "accuracy_source": acc_source,
               "fpgas": {}, "missing": [], "ratios": {}}
    for fpga, board in FPGAS:
        entry = {"board": board, "variants": {}}
        for variant in VARIANTS:
            folder = build_folder(board, variant)
            r = _load(build_dir / folder / "report.json")
            if r is not None:
                f = _figures(r)
                f["source"] = {"from": f"build/{folder}/report.json", "date": r.get("date"),
                               "commit": r.get("commit")}
                entry["variants"][variant] = f
                continue
            kept = old.get("fpgas", {}).get(fpga, {}).get("variants", {}).get(variant)
            if kept is not None:
                entry["variants"][variant] = {**kept, "source": {**(kept.get("source") or {}), "kept": True}}
                continue
            summary["missing"].append({"board": board, "variant": variant,
                                       "path": str(build_dir / folder / "report.json"),
                                       "command": f"make bitstream BOARD={board} VARIANT={variant}"})
        summary["fpgas"][fpga] = entry

    def fig(fpga, variant, key):
        return summary["fpgas"][fpga]["variants"].get(variant, {}).get(key)

    up, ecp = FPGAS[0][0], FPGAS[1][0]
    ratios = summary["ratios"]
    a, b = fig(ecp, "ternary", "windows_per_s"), fig(up, "ternary", "windows_per_s")
    ratios["ecp5_over_up5k_windows_per_s"] = round(a / b, 2) if a and b else None
    for fpga, _ in FPGAS:
        # The baseline's bits follow from the topology: no stored build is needed for this ratio.
        t, s = fig(fpga, "ternary", "weight_bits"), fig(fpga, "ternary", "baseline_weight_bits")
        if t and s:
            ratios["ternary_over_stored_weight_bits"] = round(t / s, 4)
        lt, ls = fig(fpga, "ternary", "logic_cells"), fig(fpga, "stored", "logic_cells")
        if lt and ls and fig(fpga, "stored", "fits"):
            ratios[f"{fpga}: stored_over_ternary_logic_cells"] = round(ls / lt, 2)
    return summary


def _fmt(v):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:,.1f}"   # accuracies (fractions) keep their digits
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


ACCURACY_COLUMNS = (("model", "model"), ("topology", "topology"), ("1x1", "mixer"),
                    ("trained parameters", "trained_parameters"), ("test clips", "test_n"),
                    ("float", "accuracy_float"), ("int8", "accuracy_int8"))


def _pct(v):
    return "—" if v is None else f"{100 * v:.2f}%"


def _source_text(src):
    """'measured 2026-12-01 at commit abc1234 (build/icebreaker/report.json)', or kept from before."""
    if not src:
        return ""
    when = (src.get("date") or "")[:10] or "an unrecorded date"
    text = f"measured {when}" + (f" at commit {src['commit']}" if src.get("commit") else "")
    if src.get("from"):
        text += f" ({src['from']})"
    if src.get("kept"):
        text = "kept from the committed summary: " + text
    return text


def _generic_table(acc):
    """Any other accuracy JSON: a list (or dict) of flat rows as a table, else the JSON itself."""
    rows = acc.get("table", acc.get("rows", acc)) if isinstance(acc, dict) else acc
    if isinstance(rows, dict):
        rows = [{"model": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in rows.items()]
    if isinstance(rows, list) and rows and all(isinstance(x, dict) for x in rows):
        keys = []
        for x in rows:
            keys += [k for k in x if k not in keys and not isinstance(x[k], (dict, list))]
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for x in rows:
            lines.append("| " + " | ".join(_fmt(x.get(k)) for k in keys) + " |")
        return lines
    return ["```", json.dumps(acc, indent=2)[:4000], "```"]


def _accuracy_markdown(acc, source=None):
    if acc is None:
        return ["Accuracy: not measured yet. Make it with `make dataset` and then "
                "`python -m ternkws.golden.train.report --data data/synth` (writes reports/accuracy.json and "
                "reports/accuracy.md); `ternkws report` then takes it."]
    models = acc.get("models") if isinstance(acc, dict) else None
    if not isinstance(models, list):
        return _generic_table(acc)
    lines = [f"Speaker-held-out {acc.get('split', 'test')} split of `{acc.get('data', '?')}`; "
             + (_source_text(source) or "source not recorded") + ". Details: reports/accuracy.md.", "",
             "| " + " | ".join(c for c, _ in ACCURACY_COLUMNS) + " |",
             "|---|---|---|---:|---:|---:|---:|"]
    for row in models:
        cells = []
        for _, key in ACCURACY_COLUMNS:
            v = row.get(key)
            cells.append(_pct(v) if key.startswith("accuracy") else _fmt(v))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_markdown(s):
    lines = ["# ternkws summary", "",
             f"Generated {(s.get('generated') or '')[:10] or '(date not recorded)'}"
             + (f" at commit {s['commit']}" if s.get("commit") else "")
             + " by `ternkws report` (`make report`) from the build reports and reports/accuracy.json; a figure "
               "whose input is missing keeps its committed value and says when it was measured.",
             "", "## Accuracy", ""]
    lines += _accuracy_markdown(s["accuracy"], s.get("accuracy_source"))
    lines += ["", "## Resources and throughput: ternary (LFSR 1x1) vs stored-weights baseline (learned int8 1x1)", ""]
    for fpga, entry in s["fpgas"].items():
        v = entry["variants"]
        lines += [f"### {fpga} ({entry['board']})", ""]
        if not v:
            lines += ["No build report yet.", ""]
            continue
        lines += ["| figure | ternary | stored |", "|---|---:|---:|"]
        for label, key in ROWS:
            cells = []
            for variant in VARIANTS:
                f = v.get(variant)
                if f is None:
                    cells.append("not built")
                    continue
                val = f.get(key)
                cap = f["capacity"].get(key)
                text = _fmt(val)
                if val is not None and cap:
                    text += f" / {cap:,} ({100 * val / cap:.0f}%)"
                cells.append(text)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for variant in VARIANTS:
            f = v.get(variant)
            if f is None:
                continue
            if not f["fits"]:
                over = "; ".join(f"{c} {o['used']:,}/{o['available']:,} ({o['over']:,} over)"
                                 for c, o in f["overflow"].items())
                lines.append(f"\n{variant}: **does not fit** — {over or f['error']}")
            elif f["timing_met_at_board_clock"] is not None:
                lines.append(f"\n{variant}: timing at the board's {f['board_clock_mhz']:g} MHz clock "
                             f"{'met' if f['timing_met_at_board_clock'] else 'NOT met'}.")
            if f.get("model_note"):
                lines.append(f"\n{variant}: {f['model_note']}.")
            if f.get("source"):
                lines.append(f"\n{variant}: {_source_text(f['source'])}.")
        lines.append("")
    r = s["ratios"]
    frac = r.get("ternary_over_stored_weight_bits")
    wb = "—" if frac is None else f"{100 * frac:.1f}%"
    lines += ["## Ratios", "", "| ratio | value | target |", "|---|---:|---|",
              f"| ECP5-85F / UP5K windows/s (ternary, each at its Fmax) | "
              f"{_fmt(r.get('ecp5_over_up5k_windows_per_s'))} | >= 10 |",
              f"| ternary / stored weight bits | {wb} | <= 16% |"]
    for k, val in r.items():
        if k.endswith("stored_over_ternary_logic_cells"):
            lines.append(f"| {k.split(':')[0]} stored / ternary logic cells | {_fmt(val)} | |")
    if s["missing"]:
        lines += ["", "## Missing builds", ""]
        for m in s["missing"]:
            lines.append(f"- {m['board']} {m['variant']}: {m['path']} — make it with `{m['command']}` "
                         f"(or `ternkws report --build`)")
    lines += ["", "Cycles per window: the cycle model hw/cycles.py (computed from the schedule and each unit's rule; "
                  "tests/test_cycles.py checks it against RTL simulation); the stored-weights variant runs the same "
                  "schedule. "
                  "Stored weight bits: depthwise int8 + BN constants + classifier (+ int8 1x1 for the baseline).",
              ""]
    return "\n".join(lines)


def _chart(s, path):
    """Resources of both variants per FPGA (% of the device, values on the bars), throughput, accuracy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = (("logic_cells", "LC"), ("dsp", "DSP"), ("bram", "BRAM"), ("spram", "SPRAM"))
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    for ax, (fpga, entry) in zip(axes[:2], s["fpgas"].items()):
        width = 0.38
        drawn = False
        for i, variant in enumerate(VARIANTS):
            f = entry["variants"].get(variant)
            if f is None:
                continue
            vals = []
            for k, _ in keys:
                used, cap = f.get(k), f["capacity"].get(k)
                if (used is None or not cap) and f["overflow"]:
                    o = {"logic_cells": "ICESTORM_LC", "bram": "ICESTORM_RAM", "dsp": "ICESTORM_DSP",
                         "spram": "ICESTORM_SPRAM"}.get(k)
                    o = f["overflow"].get(o) or f["overflow"].get({"bram": "DP16KD", "logic_cells": "TRELLIS_COMB"}.get(k, ""))
                    vals.append(100 * o["used"] / o["available"] if o else None)
                elif cap == 0:
                    vals.append(0.0)               # the device has none (ECP5 SPRAM)
                else:
                    vals.append(100 * used / cap if used is not None and cap else None)
            xs = [j + (i - 0.5) * width for j in range(len(keys))]
            bars = ax.bar(xs, [v or 0 for v in vals], width, label=variant + ("" if f["fits"] else " (does not fit)"))
            ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.0f}%" for v in vals], fontsize=7, padding=1)
            drawn = True
        ax.axhline(100, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(keys)), [k[1] for k in keys])
        ax.set_ylabel("% of device")
        ax.set_title(fpga)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no build report", ha="center", va="center", transform=ax.transAxes)
    ax = axes[2]
    labels, vals = [], []
    for fpga, entry in s["fpgas"].items():
        f = entry["variants"].get("ternary")
        if f and f.get("windows_per_s"):
            labels.append(fpga)
            vals.append(f["windows_per_s"])
    if vals:
        bars = ax.bar(labels, vals, color="tab:green")
        ax.bar_label(bars, labels=[f"{v:,.1f}" for v in vals], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(1, max(vals) * 3)
    else:
        ax.text(0.5, 0.5, "no build report", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("windows/s at Fmax (ternary, compute only)")
    ax.set_title("throughput")
    ax = axes[3]
    models = (s.get("accuracy") or {}).get("models") if isinstance(s.get("accuracy"), dict) else None
    if models:
        names = [m["model"] for m in models]
        xs = range(len(names))
        for i, (key, label) in enumerate((("accuracy_float", "float"), ("accuracy_int8", "int8"))):
            vals = [100 * (m.get(key) or 0) for m in models]
            bars = ax.bar([x + (i - 0.5) * 0.38 for x in xs], vals, 0.38, label=label)
            ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals], fontsize=7)
        ax.set_xticks(list(xs), names)
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "accuracy not measured", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("test accuracy, speaker-held-out (%)")
    ax.set_title("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_summary(s, out="reports"):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(s, indent=2, default=str) + "\n")
    (out / "summary.md").write_text(summary_markdown(s))
    _chart(s, out / "summary.png")
    return [out / "summary.md", out / "summary.json", out / "summary.png"]
