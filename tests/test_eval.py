"""`ternkws eval` / golden.evaluate: JSON result, agreement with the golden pipeline, bad inputs, no torch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ternkws.golden import checkpoint
from ternkws.golden.evaluate import evaluate
from ternkws.golden.pipeline import clip_features, predict_features
from ternkws.golden.data import list_examples
from ternkws.golden.labels import LABELS
from ternkws.golden.train.tinydata import make_tiny_dataset
from ternkws.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("evaltiny") / "data", per_class=(1, 1, 2), seed=2)


def test_eval_json(tiny, capsys):
    rc = main(["eval", "--data", str(tiny), "--json", "--quiet", "--jobs", "1"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 24 and r["split"] == "test"
    for key in ("accuracy_float", "accuracy_int8", "per_class", "int8_float_agreement", "confusion_int8"):
        assert key in r
    assert set(r["per_class"]) == set(LABELS)
    assert all(v["n"] == 2 for v in r["per_class"].values())
    assert 0.0 <= r["accuracy_int8"] <= 1.0
    assert sum(map(sum, r["confusion_int8"])) == 24
    # the unknown and silence clips by content: tinydata's unknowns are two words, its silence noise
    assert {k: v["n"] for k, v in r["per_content"].items()} == {"silence: noise": 2, "unknown: word": 2}
    unk = r["per_class"]["unknown"]
    assert r["per_content"]["unknown: word"]["accuracy_int8"] == unk["accuracy_int8"]


def test_eval_matches_golden_pipeline(tiny):
    model = checkpoint.load()
    r = evaluate(model, tiny, "val", jobs=2, progress=False)
    examples = list_examples(tiny, "val")
    preds = [predict_features(model, *clip_features(model, e.audio())) for e in examples]
    y = np.array([LABELS.index(e.label) for e in examples])
    assert r["accuracy_int8"] == pytest.approx(np.mean([LABELS.index(p.label) for p in preds] == y))
    assert r["accuracy_float"] == pytest.approx(np.mean([LABELS.index(p.label_float) for p in preds] == y))


def test_eval_table_and_plain_layout(tiny, tmp_path, capsys):
    plain = tmp_path / "plain"
    for label in ("yes", "silence"):
        (plain / label).mkdir(parents=True)
        for f in sorted((tiny / label).glob("*.wav"))[:2]:
            shutil.copy(f, plain / label / f.name)
    rc = main(["eval", "--data", str(plain), "--quiet", "--jobs", "1", "--model", "default"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "all" in out and "float %" in out and "int8 %" in out
    assert "by content" not in out            # a plain tree does not say what its clips hold
    rc = main(["eval", "--data", str(tiny), "--quiet", "--jobs", "1", "--model", "default"])
    out = capsys.readouterr().out
    assert rc == 0 and "unknown and silence clips by content" in out and "  unknown: word " in out


def test_eval_bad_inputs(tiny, tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["eval", "--data", str(tiny), "--model", str(tmp_path / "nope.npz")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["eval", "--data", str(tiny), "--split", "dev"]) == 2
    assert "unknown split" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    assert main(["eval", "--data", str(tiny), "--model", str(bad)]) == 2
    assert "not a ternkws checkpoint" in capsys.readouterr().err


def test_eval_without_torch(tiny):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from ternkws.cli import main\n"
            f"sys.exit(main(['eval', '--data', {str(tiny)!r}, '--json', '--quiet', '--limit', '6', '--jobs', '1']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 6


def test_calibration_study(tiny):
    from ternkws.golden.train.calibration import study
    rows = study(checkpoint.load(), tiny, [99.99, 100.0], [8], split="val", jobs=1, log=lambda *a: None)
    assert [r["percentile"] for r in rows] == [99.99, 100.0]
    assert all(r["calib_clips"] == 8 and 0 <= r["accuracy_int8"] <= 1 for r in rows)


def test_accuracy_report(tiny, tmp_path):
    from ternkws.golden.train.report import main as report_main
    assert report_main(["--data", str(tiny), "--out", str(tmp_path), "--models", "default", "--jobs", "1"]) == 0
    r = json.loads((tmp_path / "accuracy.json").read_text())
    row = r["models"][0]
    assert row["model"] == "default" and row["test_n"] == 24
    assert row["trained_parameters"] == 9356 and row["ternary_entries_generated"] == 65536
    assert "| default |" in (tmp_path / "accuracy.md").read_text()
    assert row["per_content_n"] == {"silence: noise": 2, "unknown: word": 2}
    assert "| unknown: word | 2 |" in (tmp_path / "accuracy.md").read_text()


def test_per_speaker_accuracy():
    from ternkws.golden.evaluate import per_group
    y = np.array([0, 1, 1, 2, 0])
    pf = np.array([0, 1, 0, 2, 1])
    pi = np.array([0, 0, 0, 2, 0])
    got = per_group(["rms", "slt", "rms", "slt", "rms"], y, pf, pi)
    assert list(got) == ["rms", "slt"]
    assert got["rms"] == {"n": 3, "accuracy_float": 1 / 3, "accuracy_int8": 2 / 3}
    assert got["slt"] == {"n": 2, "accuracy_float": 1.0, "accuracy_int8": 0.5}
