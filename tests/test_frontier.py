"""The frontier report (golden/train/frontier.py): point selection, per-length folders, the comparison
at equal trained parameters and the verdict. No training: rows are built by hand, and one bundled
checkpoint stands in for a point."""

import json
import shutil

import pytest

from ternkws.golden.errors import UserError
from ternkws.golden.train import frontier


def _row(family, topology, params, int8):
    return {"family": family, "topology": topology, "params": params, "int8": int8, "float": int8, "val": int8,
            "epochs": 30, "best_epoch": 30, "train_minutes": 1.0, "dataset": "data/x", "run": f"{family}-{topology}",
            "model_id": "0"}


def test_select_points():
    assert frontier.select(None) == frontier.POINTS
    assert frontier.select("ternary-3x2x64, learned-3x1x16") == [("ternary", "3x2x64"), ("learned", "3x1x16")]
    with pytest.raises(UserError, match="--points: unknown point ternary-9x9x9; the frontier's points are"):
        frontier.select("ternary-9x9x9")


def test_interpolation_inside_the_learned_range_only():
    learned = [_row("learned", "3x1x16", 8000, 0.70), _row("learned", "3x1x32", 32000, 0.80)]
    assert frontier._interp_learned(learned, 16000) == pytest.approx(0.75)        # halfway in log(params)
    assert frontier._interp_learned(learned, 8000) == pytest.approx(0.70)
    assert frontier._interp_learned(learned, 7999) is None
    assert frontier._interp_learned(learned, 40000) is None


def test_verdict_words():
    def rows(*diffs):
        return [{"family": "ternary", "ternary_minus_learned": d, "params": n} for n, d in enumerate(diffs)]
    assert frontier.verdict(rows(0.0, 0.01))[0] == "at or above"
    assert frontier.verdict(rows(-0.02, -0.01))[0] == "below"
    assert frontier.verdict(rows(-0.02, 0.01))[0] == "partly above, partly below"
    assert frontier.verdict(rows(None))[0] is None


def test_markdown_one_table_per_length_longest_first():
    def run(epochs, t):
        rows = [_row("learned", "3x1x16", 8000, 0.70), _row("learned", "3x1x32", 32000, 0.80),
                _row("ternary", "3x1x64", 16000, t)]
        for r in rows:
            r["epochs"] = epochs
        rows[2]["learned_at_same_params"] = 0.75
        rows[2]["ternary_minus_learned"] = t - 0.75
        return rows
    text = frontier.markdown({(10, "full"): run(10, 0.70), (30, "light"): run(30, 0.74), (30, "full"): run(30, 0.76)})
    assert text.index("### 30 epochs (") < text.index("### 30 epochs, light augmentation (") < text.index("### 10 epochs")
    assert "**Verdict at 30 epochs:** the ternary frontier lies at or above the learned one (ternary - learned " \
           "at equal trained parameters: 3x1x64 +1.00 points)" in text
    assert "Not measured at 30 epochs: learned-3x1x24, ternary-3x1x96," in text
    assert "--epochs 30 --points learned-3x1x24,ternary-3x1x96," in text
    assert "Not measured at 30 epochs, light augmentation: learned-3x1x24," in text
    assert "--epochs 30 --augment light --points learned-3x1x24," in text
    assert "**Verdict at 30 epochs, light augmentation:** the ternary frontier lies below the learned one" in text
    assert "**Verdict at 10 epochs:** the ternary frontier lies below the learned one" in text
    assert "| ternary | 3x1x64 | 16,000 | 76.00 |" in text


def test_reports_from_per_length_folders(tmp_path):
    """A bundled checkpoint placed as a 30-epoch point: collected, compared (outside the learned range:
    no learned point), named as a reused run, and written as JSON + Markdown + PNG."""
    point = frontier.point_path(tmp_path / "out", "ternary", "3x1x64", 30)
    assert point == tmp_path / "out" / "e30" / "ternary-3x1x64.npz"
    point.parent.mkdir(parents=True)
    shutil.copy("golden/models/default.npz", point)
    (tmp_path / "out" / "e10").mkdir()                                      # an empty length: no table
    assert frontier.lengths(tmp_path / "out") == [(10, "full"), (30, "full")]
    runs = frontier.write_reports(tmp_path / "out", tmp_path / "rep")
    assert [r["topology"] for r in runs[30, "full"]] == ["3x1x64"] and runs[10, "full"] == []
    row = runs[30, "full"][0]
    assert row["learned_at_same_params"] is None and row["params"] == 9356
    md = (tmp_path / "rep" / "frontier.md").read_text()
    assert "### 30 epochs" in md and "### 10 epochs" not in md and "outside range" in md
    assert "is the run that made checkpoint" in md                     # the checkpoint's own name differs
    data = json.loads((tmp_path / "rep" / "frontier.json").read_text())
    assert [(r["epochs"], r["augment"]) for r in data["runs"]] == [(10, "full"), (30, "full")]
    assert data["runs"][1]["verdict"] is None
    assert (tmp_path / "rep" / "frontier.png").stat().st_size > 1000


def test_augmentation_runs_have_their_own_folders(tmp_path):
    """--augment light trains into e<N>-light/; the folders are found and titled, unknown names are not
    runs, and a checkpoint whose recorded augmentation is not its folder's preset is refused."""
    out = tmp_path / "out"
    assert frontier.point_path(out, "learned", "3x1x16", 30, "light") == out / "e30-light" / "learned-3x1x16.npz"
    for d in ("e30", "e30-light", "e10", "e30-bogus", "notes"):
        (out / d).mkdir(parents=True)
    assert frontier.lengths(out) == [(10, "full"), (30, "full"), (30, "light")]
    assert frontier.run_title((30, "light")) == "30 epochs, light augmentation"
    shutil.copy("golden/models/default.npz", out / "e30-light" / "ternary-3x1x64.npz")   # trained with "full"
    with pytest.raises(UserError, match="trained with augmentation .* not the 'light' preset its folder e30-light/"):
        frontier.collect(out, 30, "light")
    assert [r["augment"] for r in frontier.collect(out, 30, "full")] == []


def test_seed_folders_round_trip(tmp_path):
    """--seed N trains into e<N>[-<augment>]-s<seed>/ (seed 0 keeps the plain name); the folder names
    parse back, and names that are not a run's are not runs."""
    assert frontier.run_dir(30) == "e30" and frontier.run_dir(30, "light", 0) == "e30-light"
    assert frontier.run_dir(30, "light", 2) == "e30-light-s2" and frontier.run_dir(10, "full", 1) == "e10-s1"
    for key in [(30, "full", 0), (30, "light", 1), (10, "off", 12)]:
        assert frontier.parse_run_dir(frontier.run_dir(*key)) == key
    for name in ("e30-full", "e30-s0", "e30-light-s", "e30-bogus", "e30-light-s1-x", "ex", "notes", "e-s1"):
        assert frontier.parse_run_dir(name) is None, name
    for d in ("e30-light", "e30-light-s1", "e30-light-s3", "e30-s1", "e30-light-s0"):
        (tmp_path / d).mkdir()
    assert frontier.lengths(tmp_path) == [(30, "full"), (30, "light")]
    assert frontier.seeds(tmp_path, 30, "light") == [0, 1, 3] and frontier.seeds(tmp_path, 30, "full") == [1]
    assert frontier.point_path(tmp_path, "ternary", "3x1x64", 30, "light", 3) == \
        tmp_path / "e30-light-s3" / "ternary-3x1x64.npz"


def _place(out, folder, family, topology, int8, params):
    """The bundled default checkpoint as a point of `folder`, its meta's accuracy and size set."""
    from ternkws.golden import checkpoint
    m = checkpoint.load("golden/models/default.npz")
    m.meta = {**m.meta, "int8_test_accuracy": int8, "trained_parameters": params}
    checkpoint.save(m, out / folder / f"{family}-{topology}.npz")


def test_seeds_pooled_mean_spread_and_paired_gaps(tmp_path):
    """Two seeds of a run: each point is the seeds' mean with its min-max, the ternary point is compared
    with the learned means and, per seed, with the same seed's learned points; the tables and the plot
    say so."""
    out = tmp_path / "out"
    for folder, (l16, l32, t64) in {"e30": (0.70, 0.80, 0.76), "e30-s1": (0.72, 0.84, 0.74)}.items():
        _place(out, folder, "learned", "3x1x16", l16, 8000)
        _place(out, folder, "learned", "3x1x32", l32, 32000)
        _place(out, folder, "ternary", "3x1x64", t64, 16000)
    _place(out, "e30-s2", "ternary", "3x1x64", 0.72, 16000)         # a seed without learned points
    rows = {r["topology"]: r for r in frontier.collect(out, 30)}
    t = rows["3x1x64"]
    assert t["seeds"] == [0, 1, 2] and t["int8"] == pytest.approx(0.74)
    assert (t["int8_min"], t["int8_max"]) == (0.72, 0.76)
    assert [p["seed"] for p in t["per_seed"]] == [0, 1, 2]
    assert rows["3x1x16"]["int8"] == pytest.approx(0.71) and rows["3x1x32"]["int8"] == pytest.approx(0.82)
    assert t["learned_at_same_params"] == pytest.approx(0.765)          # halfway between the means
    assert t["ternary_minus_learned"] == pytest.approx(-0.025)
    assert [g["seed"] for g in t["gaps_per_seed"]] == [0, 1]            # seed 2 has no learned points
    assert [g["gap"] for g in t["gaps_per_seed"]] == [pytest.approx(0.01), pytest.approx(-0.04)]
    md = frontier.markdown({(30, "full"): list(rows.values())})
    assert "| ternary | 3x1x64 | 16,000 | 74.00 (72.00-76.00) |" in md
    assert "| -2.50 (+1.00, -4.00) |" in md
    assert "### 30 epochs (data/synth2, 3 of 8 points, seeds 0, 1, 2, not all at every point)" in md
    assert "| 3x1x64 | ternary | 16,000 | 74.00 (72.00-76.00); -2.50 |" in md
    assert "Seed to seed, a point's int8 accuracy moves by 2.00 to 4.00 points" in md
    runs = frontier.write_reports(out, tmp_path / "rep")
    data = json.loads((tmp_path / "rep" / "frontier.json").read_text())
    point = next(q for q in data["runs"][0]["points"] if q["topology"] == "3x1x64")
    assert point["gaps_per_seed"][1] == {"seed": 1, "gap": pytest.approx(-0.04)}
    assert [r["seeds"] for r in runs[30, "full"]] == [[0, 1], [0, 1, 2], [0, 1]]
    assert (tmp_path / "rep" / "frontier.png").stat().st_size > 1000


def test_summary_table_one_column_per_run():
    rows = [_row("learned", "3x1x16", 8000, 0.70), _row("ternary", "3x1x64", 9000, 0.69)]
    rows[1].update(learned_at_same_params=None, ternary_minus_learned=None)
    light = [dict(_row("learned", "3x1x16", 8000, 0.72))]
    text = frontier.summary_table({(30, "full"): rows, (30, "light"): light, (10, "full"): []})
    assert text.splitlines()[0] == ("| topology | 1x1 | trained params | 30 epochs (seed 0) | "
                                    "30 epochs, light augmentation (seed 0) |")
    assert "| 3x1x16 | learned | 8,000 | 70.00 | 72.00 |" in text
    assert "| 3x1x64 | ternary | 9,000 | 69.00; outside range | not run |" in text


def test_readme_frontier_table_is_the_reports():
    """README's frontier table is the summary table of the committed reports/frontier.json, so neither
    can drift from the other (python -m ternkws.golden.train.frontier --report rewrites the reports)."""
    from pathlib import Path
    data = json.loads(Path("reports/frontier.json").read_text())
    runs = {(r["epochs"], r["augment"]): r["points"] for r in data["runs"]}
    table = frontier.summary_table(runs)
    assert table in Path("reports/frontier.md").read_text()
    assert table in Path("README.md").read_text(), \
        "README's frontier table differs from reports/frontier.json: python -m ternkws.golden.train.frontier --report --readme README.md"


def test_update_readme_replaces_only_the_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n\n| topology | 1x1 | trained params | old |\n|---|---|---:|---:|\n| a | b | 1 | 2 |\n\nafter\n")
    frontier.update_readme(readme, "| topology | 1x1 | trained params | new |\n|---|---|---:|---:|")
    assert readme.read_text() == "intro\n\n| topology | 1x1 | trained params | new |\n|---|---|---:|---:|\n\nafter\n"
    readme.write_text("no table here\n")
    with pytest.raises(UserError, match="README.md: no frontier table to replace"):
        frontier.update_readme(readme, "| x |")
    assert readme.read_text() == "no table here\n"                  # nothing lost
