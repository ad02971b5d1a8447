"""The paper's claim as a frontier: int8 speaker-held-out accuracy against trained parameters, for the
learned-1x1 family and the LFSR-ternary family, same data, recipe, seeds and epochs (issue 12).

    python -m ternkws.golden.train.frontier --data data/synth2 --epochs 10      # make frontier
    python -m ternkws.golden.train.frontier --epochs 30 --points learned-3x1x16,ternary-3x2x64
    python -m ternkws.golden.train.frontier --epochs 30 --augment light        # the recipe's other lever
    python -m ternkws.golden.train.frontier --epochs 30 --augment light --seed 1   # another training seed

Each point is an ordinary `ternkws train` run (golden/train/trainer.py) writing build/frontier/
e<epochs>[-<augment>][-s<seed>]/<family>-<BxRxC>.npz (-<augment> for an augmentation other than the
default "full", -s<seed> for a training seed other than 0); a point whose checkpoint exists is not
trained again, and an interrupted one resumes from its per-epoch state (FILE.state.pt), so the command
can be killed and re-run at any time, and two processes can share the points (`--points`). After every
point reports/frontier.{json,md,png} are rewritten from the checkpoints' meta (topology, trained
parameters, accuracy, epochs, wall time) of every training run (length, augmentation) found under
build/frontier/, its seeds pooled (mean, min-max): a summary table, one table per run, and the plot
(the shorter runs faded); `--report` only rewrites them, `--readme README.md` also README's frontier
table (the summary table; tests/test_frontier.py checks the two agree).

Does the ternary frontier lie at or above the learned one at equal trained parameters? The report
compares each ternary point with the learned frontier interpolated (linearly in log parameters) at the
same parameter count, inside the learned points' range only; outside it says so instead. With several
seeds it compares the means, and each seed's ternary point with the same seed's learned points.
"""

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np

from ternkws.golden.topology import Topology, count_parameters

# (family, BxRxC): prologue / epilogue / final get 2C channels, as in the default 3x1x64 (128).
# Learned from 8.5 k to 23.5 k trained parameters, ternary from 9.4 k to 18 k: the ranges overlap.
# The ternary family is measured in width (3x1xC) and in depth (3xRx64: the paper's "deeper models at
# the same parameter budget").
POINTS = [("learned", "3x1x16"), ("ternary", "3x1x64"), ("learned", "3x1x24"), ("learned", "3x1x32"),
          ("ternary", "3x1x96"), ("ternary", "3x1x128"), ("ternary", "3x2x64"), ("ternary", "3x3x64")]


def topology(family, name):
    c = Topology.from_name(name).blocks[0].channels
    kw = dict(prologue_channels=2 * c, epilogue_channels=2 * c, final_channels=2 * c)
    if family == "learned":
        return Topology.from_name(name, mixer="learned", **kw)
    return Topology.from_name(name, pattern="grouped", **kw)


def run_dir(epochs, augment="full", seed=0):
    """A run's folder name: e<epochs>, then -<augment> for an augmentation other than the default "full",
    then -s<seed> for a training seed other than 0 (e30, e30-light, e30-light-s1)."""
    return f"e{epochs}" + ("" if augment == "full" else f"-{augment}") + (f"-s{seed}" if seed else "")


def parse_run_dir(name):
    """The inverse of run_dir: "e30-light-s1" -> (30, "light", 1); None for a name that is not a run's."""
    from .augment import AUGMENT_PRESETS
    if not name.startswith("e"):
        return None
    parts = name[1:].split("-")
    seed = 0
    if len(parts) > 1 and parts[-1][:1] == "s" and parts[-1][1:].isdigit() and int(parts[-1][1:]) > 0:
        seed = int(parts.pop()[1:])
    if not parts[0].isdigit() or len(parts) > 2:
        return None
    augment = parts[1] if len(parts) == 2 else "full"
    if augment not in AUGMENT_PRESETS or (len(parts) == 2 and augment == "full"):
        return None
    return int(parts[0]), augment, seed


def point_path(out_dir, family, name, epochs, augment="full", seed=0):
    """Each training run has its own folder: OUT/e<epochs>[-<augment>][-s<seed>]/<family>-<BxRxC>.npz."""
    return Path(out_dir) / run_dir(epochs, augment, seed) / f"{family}-{name}.npz"


def lengths(out_dir):
    """The runs (epochs, augment) with a folder under out_dir (any seed), by epochs then augmentation."""
    return sorted({k[:2] for k in _run_folders(out_dir)}, key=run_order)


def seeds(out_dir, epochs, augment="full"):
    """The training seeds of the run (epochs, augment) with a folder under out_dir, ascending."""
    return sorted(k[2] for k in _run_folders(out_dir) if k[:2] == (epochs, augment))


def _run_folders(out_dir):
    out_dir = Path(out_dir)
    found = [parse_run_dir(d.name) for d in (out_dir.iterdir() if out_dir.is_dir() else []) if d.is_dir()]
    return [k for k in found if k is not None]


def run_order(key):
    """Sort key of a run (epochs, augment): by epochs, the default augmentation before the others."""
    epochs, augment = key
    return epochs, augment != "full", augment


def run_title(key):
    """(30, "full") -> "30 epochs"; (30, "light") -> "30 epochs, light augmentation"."""
    epochs, augment = key
    return f"{epochs} epochs" if augment == "full" else f"{epochs} epochs, {augment} augmentation"


def select(points):
    """`--points family-BxRxC,...` -> the POINTS entries to train (all of them for None)."""
    if points is None:
        return list(POINTS)
    known = {f"{f}-{n}": (f, n) for f, n in POINTS}
    wanted = [p.strip() for p in points.split(",") if p.strip()]
    bad = [p for p in wanted if p not in known]
    if bad:
        from ternkws.golden.errors import UserError
        raise UserError(f"--points: unknown point {', '.join(bad)}; the frontier's points are {', '.join(known)}")
    return [known[p] for p in wanted]


def run_points(data, out_dir, epochs, threads, seed=0, log=print, points=None, augment="full"):
    from .augment import AugmentConfig
    from .trainer import TrainConfig, state_path, train
    for family, name in select(points):
        out = point_path(out_dir, family, name, epochs, augment, seed)
        if out.is_file():
            log(f"frontier: {out} exists, kept")
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        cfg = TrainConfig(epochs=epochs, seed=seed, threads=threads, augment=AugmentConfig.named(augment))
        resume = state_path(out).is_file()
        log(f"frontier: {family} {name} ({count_parameters(topology(family, name)):,} trained parameters), "
            f"{run_title((epochs, augment))}, seed {seed}{', resuming' if resume else ''} -> {out}")
        train(data, topology(family, name), cfg, out, name=f"{family}-{name}",
              description=f"frontier point: {name} {family} 1x1, outer 2C", progress=False, log=log,
              resume=resume)
        yield out


def _interp_learned(learned, params):
    """The learned frontier (points sorted by parameters) at `params`, linear in log parameters; None
    outside the learned points' range."""
    xs = [math.log(p["params"]) for p in learned]
    if not learned or not xs[0] <= math.log(params) <= xs[-1]:
        return None
    return float(np.interp(math.log(params), xs, [p["int8"] for p in learned]))


def collect(out_dir, epochs, augment="full"):
    """Rows of the points of one run (epochs, augmentation), one per point over every training seed
    found (folders e<epochs>[-<augment>][-s<seed>]/): int8/float/val are the seeds' means, `per_seed`
    holds each seed's figures. Each ternary point is compared with the learned frontier (the learned
    points' means) of the same run, and per seed with that seed's learned points (`gaps_per_seed`). A
    checkpoint whose recorded augmentation is not the folder's is refused."""
    from ternkws.golden import checkpoint
    from ternkws.golden.errors import UserError

    from .augment_presets import preset_name
    found = {}
    for seed in seeds(out_dir, epochs, augment):
        for family, name in POINTS:
            path = point_path(out_dir, family, name, epochs, augment, seed)
            if not path.is_file():
                continue
            m = checkpoint.load(path)
            meta = m.meta
            if "augment" in meta and preset_name(meta["augment"]) != augment:
                raise UserError(f"{path}: trained with augmentation {meta['augment']}, not the '{augment}' preset its "
                                f"folder {run_dir(epochs, augment, seed)}/ stands for; move it or retrain it")
            found.setdefault((family, name), []).append(
                {"seed": seed, "file": str(path), "int8": meta["int8_test_accuracy"],
                 "float": meta["float_test_accuracy"], "val": meta["float_val_accuracy"],
                 "best_epoch": meta["best_epoch"], "train_minutes": round(meta["train_seconds"] / 60, 1),
                 "model_id": m.model_id, "run": meta.get("name"), "params": meta["trained_parameters"],
                 "epochs": meta["epochs"], "dataset": meta["dataset"],
                 "ternary_entries": meta.get("ternary_entries", 0)})
    rows = []
    for (family, name), runs in ((k, found[k]) for k in POINTS if k in found):
        first = runs[0]
        row = {"family": family, "topology": name, "augment": augment, "seeds": [r["seed"] for r in runs],
               **{k: first[k] for k in ("file", "params", "epochs", "dataset", "ternary_entries", "model_id", "run")},
               **{k: float(np.mean([r[k] for r in runs])) for k in ("int8", "float", "val")},
               "int8_min": min(r["int8"] for r in runs), "int8_max": max(r["int8"] for r in runs),
               "best_epoch": first["best_epoch"], "train_minutes": round(float(np.mean([r["train_minutes"] for r in runs])), 1),
               "per_seed": [{k: r[k] for k in ("seed", "file", "int8", "float", "val", "best_epoch", "train_minutes",
                                               "model_id", "run")} for r in runs]}
        rows.append(row)
    learned = sorted((r for r in rows if r["family"] == "learned"), key=lambda r: r["params"])
    for r in rows:
        if r["family"] == "ternary":
            ref = _interp_learned(learned, r["params"])
            r["learned_at_same_params"] = ref
            r["ternary_minus_learned"] = None if ref is None else r["int8"] - ref
            r["gaps_per_seed"] = []
            for one in r["per_seed"]:
                same = [{"params": p["params"], "int8": q["int8"]} for p in learned for q in p["per_seed"]
                        if q["seed"] == one["seed"]]
                ref_s = _interp_learned(same, r["params"]) if len(same) == len(learned) else None
                if ref_s is not None:
                    r["gaps_per_seed"].append({"seed": one["seed"], "gap": one["int8"] - ref_s})
    return rows


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdict(rows):
    """(words or None, the ternary rows inside the learned range in parameter order)."""
    inside = sorted((r for r in rows if r.get("ternary_minus_learned") is not None), key=lambda r: r["params"])
    if not inside:
        return None, inside
    return verdict_words([r["ternary_minus_learned"] for r in inside]), inside


def verdict_words(diffs):
    """Where ternary points with these differences from the learned frontier lie, in words."""
    return "at or above" if min(diffs) >= 0 else ("below" if max(diffs) < 0 else "partly above, partly below")


def _pct(r):
    """A row's int8 accuracy: "81.64" for one seed, "81.20 (80.76-81.64)" (mean, min-max) for several."""
    if len(r.get("seeds", [0])) < 2:
        return f"{100 * r['int8']:.2f}"
    return f"{100 * r['int8']:.2f} ({100 * r['int8_min']:.2f}-{100 * r['int8_max']:.2f})"


def _gap(r, none="-", per_seed=True):
    """A ternary row's difference from the learned frontier (`none` outside the learned range); per seed
    in brackets when there are several and `per_seed`."""
    diff = r.get("ternary_minus_learned")
    if diff is None:
        return none
    per = r.get("gaps_per_seed", []) if per_seed else []
    return f"{100 * diff:+.2f}" + (f" ({', '.join('%+.2f' % (100 * g['gap']) for g in per)})" if len(per) > 1 else "")


def _table_order(runs):
    """Runs longest first, the default augmentation first within a length."""
    return sorted(runs, key=lambda k: (-k[0], *run_order(k)[1:]))


def summary_table(runs):
    """One row per point, one column per run: int8 % (mean over seeds) and, for a ternary point, its
    difference from the learned frontier of the same run. README's frontier table is this table."""
    keys = [k for k in _table_order(runs) if runs[k]]
    rows = {(r["family"], r["topology"]): r for k in keys for r in runs[k]}
    head = ["topology", "1x1", "trained params"] + [
        f"{run_title(k)} ({_seeds_words(runs[k])})" for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for point in sorted(rows, key=lambda p: rows[p]["params"]):
        cells = [point[1], point[0], f"{rows[point]['params']:,}"]
        for k in keys:
            r = next((r for r in runs[k] if (r["family"], r["topology"]) == point), None)
            if r is None:
                cells.append("not run")
                continue
            gap = "" if r["family"] == "learned" else "; " + _gap(r, none="outside range", per_seed=False)
            cells.append(_pct(r) + gap)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seeds_words(rows):
    """"seed 0", "seeds 0-1", "seeds 0-2 (some points fewer)" for a run's rows."""
    counts = {tuple(r.get("seeds", [0])) for r in rows}
    every = sorted({s for c in counts for s in c})
    words = f"seed {every[0]}" if len(every) == 1 else f"seeds {', '.join(map(str, every))}"
    return words + (", not all at every point" if len(counts) > 1 else "")


def markdown(runs):
    """runs: {(epochs, augment): rows}; the summary table, then one table per run, longest first, the
    default augmentation first."""
    total = sum(len(r) for r in runs.values())
    lines = ["## Frontier: accuracy against trained parameters", "",
             f"<!-- generated by python -m ternkws.golden.train.frontier; {total} points, "
             f"{len(POINTS)} per training length -->",
             "Both families on the same data, recipe, training seeds and epochs within each run; int8 = "
             "bit-exact `forward_int` on the speaker-held-out test split, the mean over the training seeds "
             "measured (min-max in brackets where there are several). Topology BxRxC: B blocks of R "
             "sub-blocks of C channels, prologue/epilogue/final 2C; the ternary family is measured in width "
             "(3x1xC) and depth (3xRx64). \"learned at same params\": the learned points of the same run "
             "interpolated linearly in log(parameters); \"ternary - learned\" is the means' difference, then "
             "each seed's against that seed's learned points.", ""]
    if any(runs.values()):
        lines += ["Every run at a glance: int8 test %, the mean over the seeds (min-max); after a ternary point's "
                  "\"; \" its difference from the learned frontier of the same run, in points.", "", summary_table(runs)]
    for key in _table_order(runs):
        rows, title = runs[key], run_title(key)
        epochs, augment = key
        if not rows:
            continue
        lines += ["", f"### {title} ({rows[0]['dataset']}, {len(rows)} of {len(POINTS)} points, {_seeds_words(rows)})", "",
                  "| family | topology | trained params | int8 test % | float test % | val % | learned at same params % "
                  "| ternary - learned | epochs (best) | train time per seed |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(rows, key=lambda r: (r["family"], r["params"])):
            ref = r.get("learned_at_same_params")
            best = ", ".join(str(q["best_epoch"]) for q in r.get("per_seed", [r]))
            lines.append(
                f"| {r['family']} | {r['topology']} | {r['params']:,} | {_pct(r)} | {100 * r['float']:.2f} | "
                f"{100 * r['val']:.2f} | {'-' if r['family'] == 'learned' else ('outside range' if ref is None else f'{100 * ref:.2f}')} | "
                f"{_gap(r) if r['family'] == 'ternary' else '-'} | {r['epochs']} ({best}) | {r['train_minutes']} min |")
        reused = [r for r in rows if r["run"] and r["run"] != f"{r['family']}-{r['topology']}"]
        for r in reused:
            lines += ["", f"The {r['family']} {r['topology']} point is the run that made checkpoint "
                          f"'{r['run']}' (model id {r['model_id']}): the same recipe, data, seed and epochs."]
        missing = [f"{f}-{n}" for f, n in POINTS if (f, n) not in {(r["family"], r["topology"]) for r in rows}]
        if missing:
            flag = "" if augment == "full" else f" --augment {augment}"
            lines += ["", f"Not measured at {title}: {', '.join(missing)} (`python -m ternkws.golden.train."
                          f"frontier --epochs {epochs}{flag} --points {','.join(missing)}` trains them; an interrupted "
                          f"run resumes from its last epoch; `--seed N` adds a training seed)."]
        words, inside = verdict(rows)
        lines.append("")
        if words:
            gaps = ", ".join("%s %+.2f" % (r["topology"], 100 * r["ternary_minus_learned"]) for r in inside)
            lines.append(f"**Verdict at {title}:** the ternary frontier lies {words} the learned one "
                         f"(ternary - learned at equal trained parameters: {gaps} points).")
            spread = [r["int8_max"] - r["int8_min"] for r in rows if len(r.get("seeds", [])) > 1]
            if spread:
                lines.append(f"Seed to seed, a point's int8 accuracy moves by {100 * min(spread):.2f} to "
                             f"{100 * max(spread):.2f} points (max - min over the seeds measured).")
        else:
            lines.append(f"**Verdict at {title}:** not yet measurable (no ternary point inside the learned "
                         f"points' range).")
    lines += ["", "![frontier](frontier.png)", ""]
    return "\n".join(lines)


def plot(runs, path):
    """The longest training length solid and labelled (another augmentation dotted, hollow markers),
    shorter ones faded with the same markers; a point of several seeds at their mean, a bar from the
    lowest to the highest."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9.6, 4.6))
    order = [k for k in runs if runs[k]]
    longest = max((k[0] for k in order), default=0)
    for key in sorted(order, key=lambda k: (k[0] == longest, k[1] == "full")):     # the main run drawn last
        _plot_run(ax, runs[key], key, faded=key[0] < longest)
    ax.set_xscale("log")
    ax.set_xlabel("trained parameters")
    ax.set_ylabel("int8 test accuracy, speaker-held-out (%)")
    ax.set_title("Frontier at equal trained parameters and epochs\n(several seeds: their mean, bar min-max)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))    # outside: no point hidden
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_run(ax, rows, key, faded):
    series = [("learned 1x1", "o-", "C0", lambda r: r["family"] == "learned"),
              ("ternary (LFSR, grouped), width 3x1xC", "s-", "C1",
               lambda r: r["family"] == "ternary" and r["topology"].split("x")[1] == "1"),
              ("ternary, depth 3xRx64", "^--", "C2",
               lambda r: r["family"] == "ternary" and r["topology"].split("x")[2] == "64")]
    labelled = set()
    for label, style, color, member in series:
        pts = sorted((r for r in rows if member(r)), key=lambda r: r["params"])
        if not pts:
            continue
        other = key[1] != "full"
        ys = [100 * p["int8"] for p in pts]
        ax.plot([p["params"] for p in pts], ys, marker=style[0],
                ls=":" if other else style[1:], color=color, alpha=0.35 if faded else 1.0, mfc="none" if other else color,
                label=f"{label}, {run_title(key)}")
        spread = [p for p in pts if len(p.get("seeds", [])) > 1]       # several seeds: the min-max bar
        if spread:
            ax.errorbar([p["params"] for p in spread], [100 * p["int8"] for p in spread],
                        yerr=[[100 * (p["int8"] - p["int8_min"]) for p in spread],
                              [100 * (p["int8_max"] - p["int8"]) for p in spread]],
                        fmt="none", ecolor=color, alpha=0.35 if faded else 0.8, capsize=3)
        for p in pts:
            if faded or other or p["topology"] + p["family"] in labelled:
                continue
            labelled.add(p["topology"] + p["family"])
            ax.annotate(p["topology"], (p["params"], 100 * p["int8"]), textcoords="offset points", xytext=(4, -10),
                        fontsize=7)


def write_reports(out_dir, reports):
    """reports/frontier.{json,md,png} from every training run's checkpoints under out_dir."""
    runs = {k: collect(out_dir, *k) for k in lengths(out_dir)}
    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    with open(reports / "frontier.json", "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "commit": _commit(),
                   "runs": [{"epochs": k[0], "augment": k[1], "verdict": verdict(runs[k])[0], "points": runs[k]}
                            for k in runs]},
                  f, indent=1)
    (reports / "frontier.md").write_text(markdown(runs) + "\n")
    if any(runs.values()):
        plot(runs, reports / "frontier.png")
    return runs


def update_readme(path, table):
    """Replace the frontier table in the Markdown file `path` (the table whose header starts like
    summary_table's) with `table`; refused in one sentence when the file has no such table."""
    from ternkws.golden.errors import UserError
    path = Path(path)
    lines = path.read_text().split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("| topology | 1x1 | trained params |")), None)
    if start is None:
        raise UserError(f"{path}: no frontier table to replace (a line starting '| topology | 1x1 | trained params |')")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    path.write_text("\n".join(lines[:start] + table.split("\n") + lines[end:]))


def main(argv=None):
    from .augment import AUGMENT_PRESETS
    p = argparse.ArgumentParser(prog="python -m ternkws.golden.train.frontier", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synth2", help="dataset folder (default data/synth2)")
    p.add_argument("--out", default="build/frontier", help="checkpoints folder (default build/frontier)")
    p.add_argument("--reports", default="reports", help="where frontier.{json,md,png} go (default reports)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of every point (default 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0,
                   help="training seed of every point (default 0; others get their own folder, pooled in the reports)")
    p.add_argument("--augment", default="full", choices=AUGMENT_PRESETS,
                   help="augmentation preset of every point (default full; others get their own folder)")
    p.add_argument("--points", default=None, metavar="LIST",
                   help="train only these points (comma-separated family-BxRxC, e.g. learned-3x1x16,ternary-3x2x64), "
                        "e.g. to split the frontier over two processes; the reports always cover every point")
    p.add_argument("--report", action="store_true", help="only rewrite the reports from the checkpoints")
    p.add_argument("--readme", default=None, metavar="FILE",
                   help="also rewrite the frontier table in this Markdown file (README.md) from the reports")
    a = p.parse_args(argv)
    from ternkws.golden.errors import UserError
    try:
        select(a.points)                              # an unknown point: refused before any training
    except UserError as e:
        p.error(str(e))
    if not a.report:
        import os
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch
        torch.set_num_threads(a.threads)
        for _ in run_points(a.data, a.out, a.epochs, a.threads, a.seed, log=lambda s: print(s, flush=True),
                            points=a.points, augment=a.augment):
            write_reports(a.out, a.reports)
    runs = write_reports(a.out, a.reports)
    if a.readme:
        try:
            update_readme(a.readme, summary_table(runs))
        except UserError as e:
            p.error(str(e))
    print(f"wrote {a.reports}/frontier.json, .md, .png ("
          + ", ".join(f"{len(rows)} of {len(POINTS)} points at {run_title(k)}" for k, rows in runs.items()) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
