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
