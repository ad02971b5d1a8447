"""Every checkpoint on the RTL: each model through the accelerator (Verilator) on the bundled clips,
every logit compared with the golden int8 model (issue 12: "every checkpoint loads and runs bit-exact").

    python -m ternkws.sim.checkpoints                                   # make rtl-checkpoints
    python -m ternkws.sim.checkpoints build/frontier/e30/*.npz --clips 3 --append
    python -m ternkws.sim.checkpoints --from-sim-json build/sim_default.json --append   # a `ternkws sim --json` run

Writes reports/rtl_checkpoints.{json,md}: per checkpoint its model id, topology, training facts
(data, epochs, augmentation preset, training seed, weight average (--ema), teacher), clips bit-exact,
clips right, cycles per window and simulation time. `--append` keeps the rows of checkpoints not
simulated this time (a row is replaced when the same file is run again; a kept row's training facts are
re-read from its checkpoint while the file still holds the same model). Exit status 1 if any clip
mismatches.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BUNDLED = ("default", "iid", "baseline", "budget")


def _meta_facts(meta):
    """What a row takes from a checkpoint's meta: its training facts and test accuracy (absent: None)."""
    from ternkws.golden.train.augment_presets import preset_name
    augment = meta.get("augment")
    return {"dataset": meta.get("dataset"), "epochs": meta.get("epochs"), "teacher": meta.get("teacher"),
            "augment": None if augment is None else (preset_name(augment) or "custom"),
            "seed": (meta.get("train_config") or {}).get("seed"),
            "ema": (meta.get("train_config") or {}).get("ema"),
            "int8_test_accuracy": meta.get("int8_test_accuracy")}


def _ternary_facts(top):
    """The ternary 1x1s' pattern and density (None for a learned model)."""
    ternary = top.mixer == "ternary"
    return {"pattern": top.pattern if ternary else None, "density": top.density if ternary else None}


def _row(model, config_name, clips, sim_seconds, wall_seconds):
    """clips: [(file, bit_exact, class name, cycles)]."""
    from ternkws.golden.data import expected_label
    try:
        shown = str(Path(model.path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(model.path)
    return {"file": shown, "model_id": model.model_id, "topology": model.topology.name,
            "mixer": model.topology.mixer, **_ternary_facts(model.topology),
            **_meta_facts(model.meta), "config": config_name, "clips": len(clips),
            "bit_exact": sum(bool(c[1]) for c in clips),
            "right": sum(c[2] == expected_label(c[0], model.labels) for c in clips),
            "cycles_per_window": sorted({int(c[3]) for c in clips}),
            "sim_seconds": round(sim_seconds, 1), "wall_seconds": round(wall_seconds, 1)}


def refresh(row):
    """A kept row with its training facts re-read from its checkpoint, if the file still holds the model the
    row simulated (same model id); otherwise the row as it was."""
    from ternkws.golden.checkpoint import load
    from ternkws.golden.errors import UserError
    if not Path(row["file"]).is_file():
        return row
    try:
        model = load(row["file"])
    except UserError:
        return row
    if model.model_id != row["model_id"]:
        return row
    return {**row, **_meta_facts(model.meta), **_ternary_facts(model.topology)}


def _training(r):
    """The "training" cell: data, epochs; augmentation preset, seed, weight average; teacher (what the row
    knows of them)."""
    cell = f"{r['dataset']}, {r['epochs']} ep"
    extra = [f"{r['augment']} aug" if r.get("augment") else None,
             f"seed {r['seed']}" if r.get("seed") is not None else None,
             f"EMA {r['ema']:g}" if r.get("ema") else None]
    cell += "".join(f", {e}" for e in extra if e)
    return cell + (f" (teacher {r['teacher']})" if r.get("teacher") else "")


def _log_row(row, log):
    log(f"{row['file']}: {row['bit_exact']}/{row['clips']} clips bit-exact, {row['right']}/{row['clips']} right, "
        f"{', '.join(f'{c:,}' for c in row['cycles_per_window'])} cycles per window ({row['wall_seconds']:.0f} s)")


def from_sim_json(path, log=print):
    """A row from the JSON that `ternkws sim --json` printed (the same check on the same clips)."""
    from ternkws.golden.checkpoint import load
    d = json.loads(Path(path).read_text())
    model = load(d["model"])
    if model.model_id != d["model_id"]:
        raise SystemExit(f"{path}: simulated model id {d['model_id']}, but {d['model']} is now {model.model_id}")
    row = _row(model, d["config"], [(c["file"], c["bit_exact"], c["class"], c["cycles"]) for c in d["clips"]],
               d["sim_seconds"], d["wall_seconds"])
    _log_row(row, log)
    return row


def run_checkpoint(path, wavs, config_name="up5k", log=print):
    from ternkws.golden.audio import read_wav
    from ternkws.golden.checkpoint import load
    from ternkws.golden.network import forward_int
    from ternkws.golden.pipeline import clip_features
    from ternkws.golden.progress import Progress
    from ternkws.hw.accelerator import CONFIGS, check_config
    from ternkws.sim.accelerator_verilator import run_rtl

    model = load(path)
    config = CONFIGS[config_name]
    check_config(model, config)
    windows = np.stack([clip_features(model, read_wav(w, model.features.sample_rate))[1] for w in wavs])
    t0 = time.time()
    results, timing = run_rtl(model, config, windows, progress=Progress(prefix=f"{Path(str(path)).name}: "))
    clips = []
    for wav, x, (logits, cls, n) in zip(wavs, windows, results):
        ref = forward_int(model.topology, model.int_arrays, x)
        clips.append((wav, np.array_equal(logits, ref) and cls == int(np.argmax(ref)), model.labels[cls], n))
    row = _row(model, config.name, clips, timing["sim_seconds"], time.time() - t0)
    _log_row(row, log)
    return row


def markdown(rows):
    from ternkws.golden.topology import density_name
    lines = ["# Every checkpoint on the RTL", "",
             "<!-- generated by python -m ternkws.sim.checkpoints (make rtl-checkpoints) -->",
             "Each checkpoint through the accelerator RTL (Verilator, up5k configuration unless named) on "
             "bundled clips (golden/samples/), every logit compared with the golden int8 model "
             "(`forward_int`). Training: data, epochs, augmentation preset (golden/train/augment_presets.py), "
             "training seed, weight average (--ema) and teacher, from the checkpoint's meta. Test accuracy: "
             "the checkpoint's own speaker-held-out figure (meta).", "",
             "| checkpoint | model id | topology | 1x1 | training | int8 test % | clips bit-exact | clips right "
             "| cycles per window | simulation |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        mix = r["mixer"] if r["mixer"] != "ternary" else f"ternary {r['pattern']}"
        mix += f" {density_name(r['density'])}" if r.get("density") else ""
        acc = "-" if r["int8_test_accuracy"] is None else f"{100 * r['int8_test_accuracy']:.2f}"
        lines.append(f"| `{r['file']}` | {r['model_id']} | {r['topology']} | {mix} | {_training(r)} | {acc} | "
                     f"{r['bit_exact']}/{r['clips']} | {r['right']}/{r['clips']} | "
                     f"{', '.join(f'{c:,}' for c in r['cycles_per_window'])} | {r['sim_seconds']:.0f} s |")
    total = sum(r["clips"] for r in rows)
    exact = sum(r["bit_exact"] for r in rows)
    lines += ["", f"**{len(rows)} checkpoints, {exact}/{total} windows bit-exact.**", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m ternkws.sim.checkpoints", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help=f"checkpoints (.npz or bundled names; default: {', '.join(BUNDLED)})")
    p.add_argument("--clips", type=int, default=None, metavar="N",
                   help="only the first N bundled clips (alphabetical); default all")
    p.add_argument("--samples", default="golden/samples", help="folder of the clips (default golden/samples)")
    p.add_argument("--config", default="up5k", help="accelerator configuration (default up5k)")
    p.add_argument("--reports", default="reports", help="where rtl_checkpoints.{json,md} go (default reports)")
    p.add_argument("--append", action="store_true", help="keep the earlier rows of other checkpoints")
    p.add_argument("--from-sim-json", nargs="+", default=[], metavar="FILE",
                   help="rows from `ternkws sim --json` outputs instead of simulating (the model id must match)")
    a = p.parse_args(argv)
    wavs = sorted(str(w) for w in Path(a.samples).glob("*.wav"))[:a.clips]
    if not wavs:
        p.error(f"no .wav clips in {a.samples}")
    reports = Path(a.reports)
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / "rtl_checkpoints.json"
    rows = [refresh(r) for r in json.loads(out.read_text())["checkpoints"]] if a.append and out.is_file() else []
    jobs = [("json", f) for f in a.from_sim_json] + [("sim", m) for m in (a.models or ([] if a.from_sim_json else BUNDLED))]
    for kind, item in jobs:
        log = lambda s: print(s, flush=True)  # noqa: E731
        row = from_sim_json(item, log) if kind == "json" else run_checkpoint(item, wavs, a.config, log=log)
        rows = [r for r in rows if r["file"] != row["file"]] + [row]
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "checkpoints": rows}, indent=1) + "\n")
        (reports / "rtl_checkpoints.md").write_text(markdown(rows))
    bad = sum(r["clips"] - r["bit_exact"] for r in rows)
    print(f"wrote {out} and rtl_checkpoints.md: {len(rows)} checkpoints, {bad} windows mismatched")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
