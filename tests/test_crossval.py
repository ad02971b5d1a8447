"""Speaker folds (voices.FOLDS, `ternkws dataset --fold`) and the cross-validation report
(golden/train/crossval.py). No synthesis and no training: plans, hand-made manifests and rows."""

import csv
import json

import pytest

from ternkws.golden import dataset, voices
from ternkws.golden.errors import UserError
from ternkws.golden.train import crossval


def test_fold_zero_is_the_documented_split():
    assert voices.split_of_speaker(0) == voices.SPLIT_OF_SPEAKER
    assert voices.split_of_speaker() == voices.SPLIT_OF_SPEAKER


def test_folds_rotate_three_disjoint_groups_of_five():
    groups = voices.HELD_OUT_GROUPS
    members = [s for g in groups.values() for s in g]
    assert len(members) == 15 == len(set(members)) and set(members) <= set(voices.SPLIT_OF_SPEAKER)
    # every group is the test split once and the val split once, never both in one fold
    assert sorted(t for _, t in voices.FOLDS.values()) == sorted(groups)
    assert sorted(v for v, _ in voices.FOLDS.values()) == sorted(groups)
    assert all(v != t for v, t in voices.FOLDS.values())
    speaker_group = {v.speaker: v.group for v in voices.ALL_VOICES}
    for name, group in groups.items():
        kinds = sorted(speaker_group[s] for s in group)
        assert kinds == ["english", "foreign", "foreign", "formant", "formant"], (name, kinds)
    for k in voices.FOLDS:
        split_of = voices.split_of_speaker(k)
        assert set(split_of) == set(voices.SPLIT_OF_SPEAKER)
        assert sum(s == "train" for s in split_of.values()) == len(split_of) - 10
        # train keeps recorded English people and every group
        train = [v for v in voices.ALL_VOICES if split_of[v.speaker] == "train" and voices.weight(v) > 0]
        assert {v.group for v in train} == {"english", "foreign", "formant"}


def test_unknown_fold_is_refused_in_one_sentence():
    with pytest.raises(UserError, match=r"^--fold must be one of 0, 1, 2 \(got 3\)$"):
        voices.split_of_speaker(3)
    with pytest.raises(UserError, match="--fold must be one of"):
        dataset.plan(20, 0, dataset.SOURCES, fold=-1)


def test_plan_of_a_fold_moves_only_the_people():
    p0 = dataset.plan(30, 0, dataset.SOURCES)
    assert p0 == dataset.plan(30, 0, dataset.SOURCES, fold=0)
    for k in (1, 2):
        pk = dataset.plan(30, 0, dataset.SOURCES, fold=k)
        assert pk != p0
        split_of = voices.split_of_speaker(k)
        assert [(c.index, c.label, c.split, c.kind, c.file.split("/")[0]) for c in pk] == \
               [(c.index, c.label, c.split, c.kind, c.file.split("/")[0]) for c in p0]
        for c in pk:
            for b in c.bases:
                assert split_of[b.voice.speaker] == c.split, (k, c)
        test_people = {b.voice.speaker for c in pk if c.split == "test" for b in c.bases}
        assert test_people <= set(voices.HELD_OUT_GROUPS[voices.FOLDS[k][1]])


def _manifest(tmp_path, rows):
    tmp_path.mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=dataset.MANIFEST_COLUMNS)
        w.writeheader()
        for speaker, split in rows:
            w.writerow({"file": "x.wav", "label": "yes", "word": "yes", "voice": "v", "speaker": speaker,
                        "split": split, "augment": ""})
    return tmp_path


def test_check_fold_refuses_another_folds_data(tmp_path):
    d = _manifest(tmp_path / "d", [("kal", "train"), ("rms", "test"), ("awb", "val"), ("noise-test", "test")])
    crossval.check_fold(d, 0)
    with pytest.raises(UserError, match=r"is not speaker fold 1's data: its test split holds rms, whom fold 1 "
                                        r"puts in train; generate it with `ternkws dataset --out .* --fold 1`"):
        crossval.check_fold(d, 1)
    with pytest.raises(UserError, match="manifest.csv does not exist"):
        crossval.check_fold(tmp_path / "none", 2)


def _row(family, topology, params, int8, fold_source="here"):
    return {"family": family, "topology": topology, "params": params, "int8": int8, "float": int8,
            "val": int8 + 0.01, "best_epoch": 30, "train_minutes": 1.0, "dataset": "data/x", "source": fold_source}


def _folds():
    def fold(t16, t24, tern):
        return [_row("learned", "3x1x16", 8000, t16), _row("learned", "3x1x24", 16000, t24),
                _row("ternary", "3x1x64", 11314, tern)]   # sqrt(8000*16000): halfway in log(params)
    folds = {0: fold(0.80, 0.84, 0.80), 1: fold(0.70, 0.74, 0.73), 2: fold(0.90, 0.90, 0.89)}
    folds[0].append(_row("ternary", "3x3x64", 15000, 0.80))
    return folds


def test_compare_gaps_per_fold_and_their_mean():
    table, measured = crossval.compare(_folds())
    assert measured == [0, 1, 2]
    tern = next(p for p in table if p["topology"] == "3x1x64")
    assert tern["gap"] == {0: pytest.approx(-0.02, abs=1e-4), 1: pytest.approx(0.01, abs=1e-4),
                           2: pytest.approx(-0.01, abs=1e-4)}
    assert tern["gap_mean"] == pytest.approx(-0.02 / 3, abs=1e-4)
    assert tern["mean"] == pytest.approx((0.80 + 0.73 + 0.89) / 3) and tern["every_fold"]
    deep = next(p for p in table if p["topology"] == "3x3x64")
    assert not deep["every_fold"] and list(deep["int8"]) == [0]


def test_markdown_verdict_and_partial_points():
    folds = _folds()
    table, measured = crossval.compare(folds)
    text = crossval.markdown(folds, table, measured, (30, "light"))
    assert "| ternary | 3x1x64 | 11,314 | 80.00 | 73.00 | 89.00 | 80.67 | 0: -2.00, 1: +1.00, 2: -1.00 | -0.67 |" in text
    assert "80.00 (fold 0 only)" in text
    assert "**Verdict over folds 0, 1, 2:** the ternary points lie partly above, partly below the learned " \
           "frontier of their own fold (3x1x64 mean -0.67 points; 2 of 3 fold comparisons negative)." in text
    one = {0: folds[0], 1: [], 2: []}
    table, measured = crossval.compare(one)
    assert "**Verdict:** not yet measurable" in crossval.markdown(one, table, measured, (30, "light"))


def test_fold_zero_falls_back_to_the_frontier_report(tmp_path):
    point = {"family": "learned", "topology": "3x1x16", "params": 8508, "dataset": "data/synth2",
             "per_seed": [{"seed": 0, "int8": 0.8, "float": 0.81, "val": 0.82, "best_epoch": 20, "train_minutes": 6.5},
                          {"seed": 1, "int8": 0.7, "float": 0.71, "val": 0.72, "best_epoch": 20, "train_minutes": 6.5}]}
    report = tmp_path / "frontier.json"
    report.write_text(json.dumps({"runs": [{"epochs": 30, "augment": "light", "points": [point]},
                                           {"epochs": 30, "augment": "full", "points": []}]}))
    rows = crossval.fold_rows(0, 30, "light", out_dir=tmp_path / "cv", frontier_out=tmp_path / "none",
                              frontier_json=report)
    assert [(r["topology"], r["int8"], r["source"]) for r in rows] == [("3x1x16", 0.8, str(report))]
    assert crossval.fold_rows(1, 30, "light", out_dir=tmp_path / "cv", frontier_out=tmp_path / "none",
                              frontier_json=report) == []
    assert crossval.fold_rows(0, 10, "full", out_dir=tmp_path / "cv", frontier_out=tmp_path / "none",
                              frontier_json=report) == []


def test_write_reports_and_cli(tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    assert crossval.main(["--report", "--out", str(tmp_path / "cv"), "--frontier-out", str(tmp_path / "none"),
                          "--reports", str(tmp_path / "reports")]) == 0
    assert "fold 0: 0 points, fold 1: 0 points, fold 2: 0 points" in capsys.readouterr().out
    data = json.loads((tmp_path / "reports" / "crossval.json").read_text())
    assert data["folds"]["1"] == {"val": "C", "test": "B", "points": []}
    with pytest.raises(SystemExit):
        crossval.main(["--fold", "1", "--data", str(tmp_path / "nodata"), "--reports", str(tmp_path / "reports")])
    assert "manifest.csv does not exist" in capsys.readouterr().err


def test_committed_report_is_its_json():
    """reports/crossval.md is what markdown() makes of reports/crossval.json, and reports/accuracy.md
    carries it (python -m ternkws.golden.train.report includes it)."""
    from pathlib import Path
    path = Path("reports/crossval.json")
    if not path.is_file():
        pytest.skip("no committed cross-validation report")
    data = json.loads(path.read_text())
    folds = {int(k): v["points"] for k, v in data["folds"].items()}
    table, measured = crossval.compare(folds)
    text = crossval.markdown(folds, table, measured, (data["epochs"], data["augment"]))
    recipes = {n: {int(k): v for k, v in g.items()} for n, g in data.get("recipes", {}).items()}
    assert Path("reports/crossval.md").read_text() == text + "\n" + crossval.recipes_markdown(recipes)
    assert text.strip() in Path("reports/accuracy.md").read_text()


def test_recipes_are_named_and_fold_zero_is_the_bundled_checkpoints(tmp_path):
    """--recipes: unknown names refused; fold 0 reads the bundled checkpoints, or the RTL report's record of
    a recipe with no bundled checkpoint (int8 only); other folds read build/crossval/fold<k>/recipe/."""
    import shutil
    with pytest.raises(UserError, match="unknown recipe nope; choose among baseline, default, default-ema, default-ema-unk2"):
        crossval.select_recipes("default,nope")
    assert crossval.select_recipes(None) == []
    rtl = tmp_path / "rtl.json"
    rtl.write_text(json.dumps({"checkpoints": [{"file": "build/train/default-ema-lr1e-2-s0.npz",
                                                "int8_test_accuracy": 0.8199}]}))
    cv = tmp_path / "cv"
    (cv / "fold1" / "recipe").mkdir(parents=True)
    shutil.copy("golden/models/baseline.npz", cv / "fold1" / "recipe" / "baseline.npz")
    rows = crossval.recipe_rows(cv, rtl)
    assert sorted(rows) == ["baseline", "default", "default-ema"]
    assert sorted(rows["baseline"]) == [0, 1] and rows["baseline"][0]["source"] == "golden/models/baseline.npz"
    assert rows["baseline"][1]["source"] == str(cv / "fold1" / "recipe" / "baseline.npz")
    assert rows["default-ema"] == {0: {"int8": 0.8199, "val": None, "dataset": "data/synth2",
                                       "source": "build/train/default-ema-lr1e-2-s0.npz (reports/rtl_checkpoints.json)"}}
    assert rows["default"][0]["val"] == pytest.approx(0.8258, abs=1e-4)


def test_recipes_markdown_and_differences():
    rec = {"baseline": {0: {"int8": 0.84, "val": 0.87, "source": "a"}, 1: {"int8": 0.80, "val": 0.8, "source": "b"},
                        2: {"int8": 0.70, "val": 0.8, "source": "c"}},
           "default": {0: {"int8": 0.82, "val": None, "source": "a"}, 1: {"int8": 0.76, "val": 0.8, "source": "b"},
                       2: {"int8": 0.71, "val": 0.8, "source": "c"}},
           "default-ema": {0: {"int8": 0.82, "val": None, "source": "a"}}}
    text = crossval.recipes_markdown(rec)
    assert "| 84.00 (87.00) | 80.00 (80.00) | 70.00 (80.00) | 78.00 |" in text
    assert "| 82.00 | not run | not run | 82.00 (fold 0 only) |" in text
    assert "default - baseline per fold: -2.00, -4.00, +1.00 (mean -1.67 points)." in text
    assert "default-ema - baseline" not in text
    assert crossval.recipes_markdown({}) == ""


def test_a_rewrite_keeps_what_the_report_recorded(tmp_path):
    """Checkpoints of another checkout are gone: the figures of the previous report stay, with where they
    were recorded; a figure measured here replaces the record."""
    old = {"epochs": 30, "augment": "light",
           "folds": {"1": {"points": [{"family": "learned", "topology": "3x1x16", "params": 8508, "int8": 0.8,
                                       "float": 0.8, "val": 0.8, "best_epoch": 1, "train_minutes": 1,
                                       "dataset": "d1", "source": "build/crossval/fold1"}]}},
           "recipes": {"default": {"1": {"int8": 0.7, "val": 0.7, "source": "build/x.npz"},
                                   "2": {"int8": 0.6, "val": 0.6, "source": "build/y.npz"}}}}
    path = tmp_path / "crossval.json"
    path.write_text(json.dumps(old))
    folds = {0: [], 1: [], 2: []}
    recipes = {"default": {2: {"int8": 0.65, "val": 0.6, "source": "here.npz"}}}
    crossval.keep_recorded(folds, recipes, (30, "light"), path)
    assert [(r["topology"], r["source"]) for r in folds[1]] == [("3x1x16", f"{path} (recorded from build/crossval/fold1)")]
    assert recipes["default"][1]["source"] == f"{path} (recorded from build/x.npz)"
    assert recipes["default"][2]["source"] == "here.npz"
    again = {"default": {1: {**recipes["default"][1]}}}
    crossval.keep_recorded({0: [], 1: [], 2: []}, again, (30, "light"), path)     # no nesting on a rewrite
    assert again["default"][1]["source"].count("recorded from") == 1
    other = {0: [], 1: [], 2: []}
    crossval.keep_recorded(other, {}, (10, "full"), path)        # another run's points are not this run's
    assert other[1] == []
