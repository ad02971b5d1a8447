"""One grammar for every `ternkws` command (ternkws/commands/_common.py, `ternkws --help`):

* `--model M` is a checkpoint file or a bundled model name, in every command that takes a model;
* exit status 0 OK, 1 a result that is not OK, 2 a user error (one line, no traceback), 2 outranks 1;
* several WAV files: go on past a bad one, an error line each, a summary line, exit status 2;
* usage lines show required options and choices, every --help ends with examples that parse;
* advice names only options that exist;
* --json: stdout is the JSON document alone (twice in a row where a cache is involved);
* caches in $TERNKWS_CACHE_DIR, never beside the data;
* `train --out EXISTING` refuses without --overwrite, `make train` writes a new file.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ternkws.cli import COMMANDS, build_parser, main
from ternkws.golden import checkpoint

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "golden" / "samples"
YES = str(SAMPLES / "yes.wav")
TAKES_MODEL = ("infer", "eval", "synth", "sim", "verilog", "build", "flash", "run")


def _subparsers():
    parser = build_parser()
    return parser, parser._subparsers._group_actions[0].choices


def _one_error_line(err, command):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ternkws {command}: error: ") and "Traceback" not in err
    return lines[0]


# -- help, usage, examples --------------------------------------------------------------------------------

def test_top_help_documents_the_grammar(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for text in ("exit status:", "  0 ", "  1 ", "  2 ", "user error", "not bit-exact", "does not fit",
                 "$TERNKWS_CACHE_DIR", "~/.cache/ternkws", "$TERNKWS_BUILD_DIR", "--json", "examples:"):
        assert text in out, text
    for name in checkpoint.BUNDLED_MODELS:
        assert f"golden/models/{name}.npz" in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_ends_with_examples_that_parse(command, capsys):
    parser, subs = _subparsers()
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    tail = out[out.index("\nexamples:\n"):].strip().splitlines()[1:]
    assert 1 <= len(tail) <= 3, out
    for line in tail:
        argv = shlex.split(line.split(" > ")[0])
        assert argv[:2] == ["ternkws", command], line
        parser.parse_args(argv[1:])      # a usage error would raise (the examples use real options)


@pytest.mark.parametrize("command", TAKES_MODEL)
def test_model_option_is_a_checkpoint_everywhere(command):
    _, subs = _subparsers()
    action = next(a for a in subs[command]._actions if "--model" in a.option_strings)
    assert action.metavar == "M" and action.default is None
    assert ".npz file" in action.help
    for name in checkpoint.BUNDLED_MODELS:
        assert name in action.help


def test_train_names_its_architecture_arch():
    _, subs = _subparsers()
    train = subs["train"]
    visible = {o for a in train._actions if a.help != "==SUPPRESS==" for o in a.option_strings}
    assert "--arch" in visible and "--model" not in visible and "--overwrite" in visible
    assert "--arch {ternary,learned,budget}" in train.format_usage()


def test_usage_shows_required_options_and_choices():
    _, subs = _subparsers()
    usage = {name: " ".join(p.format_usage().split()) for name, p in subs.items()}
    assert "(--unit NAME | --sweep | --render)" in usage["synth"]
    assert "(--port DEV | --sim)" in usage["run"]
    assert "-o FILE" in usage["verilog"] and "[-o FILE" not in usage["verilog"]
    assert "--data DIR" in usage["eval"] and "[--data" not in usage["eval"]
    assert "[--split {train,val,test,all}]" in usage["eval"]
    for name in ("sim", "verilog", "run", "synth"):
        assert "--config {up5k,ecp5}" in usage[name], name
    assert "--board {icebreaker," in usage["build"] and "--board {icebreaker," in usage["flash"]


def test_choice_lists_match_their_sources():
    from ternkws.commands import _common, run, sim, synth, verilog
    from ternkws.golden.data import SPLITS
    from ternkws.golden.train import features
    from ternkws.hw.accelerator import CONFIGS
    for module in (run, sim, synth, verilog):
        assert module.CONFIG_NAMES == tuple(CONFIGS), module.__name__
    assert _common.CACHE_DIR_ENV == features.CACHE_DIR_ENV
    _, subs = _subparsers()
    split = next(a for a in subs["eval"]._actions if "--split" in a.option_strings)
    assert split.metavar == "{" + ",".join((*SPLITS, "all")) + "}"
    for name in checkpoint.BUNDLED_MODELS:
        assert (checkpoint.MODELS_DIR / f"{name}.npz").is_file()


def test_advice_names_only_options_that_exist():
    """Every `ternkws CMD --option` written in the sources and docs (messages, help, README) uses an
    option CMD has (e.g. run's model-mismatch advice and flash --model)."""
    _, subs = _subparsers()
    known = {name: {o for a in p._actions if a.help != "==SUPPRESS==" for o in a.option_strings}
             for name, p in subs.items()}
    files = [p for d in ("ternkws", "golden", "hw", "sim", "boards") for p in (ROOT / d).rglob("*.py")]
    files += [ROOT / "README.md", ROOT / "Makefile", *ROOT.glob("*/*.md")]
    pattern = re.compile(r"ternkws (" + "|".join(COMMANDS) + r")\b([^`'\"\n;)]*)")
    seen, wrong = 0, []
    for f in files:
        for m in pattern.finditer(f.read_text(errors="replace")):
            for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", m.group(2)):
                seen += 1
                if option not in known[m.group(1)]:
                    wrong.append(f"{f.relative_to(ROOT)}: ternkws {m.group(1)} {option}")
    assert seen > 50 and not wrong, wrong


# -- --model: files and bundled names ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(checkpoint.BUNDLED_MODELS))
def test_bundled_names_resolve(name):
    assert checkpoint.resolve(name) == checkpoint.MODELS_DIR / f"{name}.npz"
    assert checkpoint.load(name).path == str(checkpoint.MODELS_DIR / f"{name}.npz")


def test_infer_takes_a_bundled_name(capsys):
    assert main(["infer", "--model", "baseline", "--json", YES]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == str(checkpoint.BASELINE_MODEL)


def test_unknown_model_names_the_bundled_ones(capsys):
    assert main(["infer", "--model", "resnet", YES]) == 2
    line = _one_error_line(capsys.readouterr().err, "infer")
    assert "resnet: no such checkpoint" in line and "default, iid, baseline, budget" in line


# -- user errors: exit status 2, one line, no traceback ---------------------------------------------------

def _bad_cases(tmp):
    return {
        "verilog -o DIR": (["verilog", "-o", str(tmp)], "is a directory"),
        "verilog -o FILE/x.v": (["verilog", "-o", str(tmp / "file.txt" / "x.v")], "is a file, not a folder"),
        "verilog -o unwritable": (["verilog", "-o", "/proc/ternkws-no-such/x.v"], "cannot create files in /proc"),
        "verilog --config": (["verilog", "-o", str(tmp / "a.v"), "--config", "vu9p"], "--config must be one of"),
        "sim --waves DIR": (["sim", "--waves", str(tmp), YES], "is a directory"),
        "train --out EXISTING": (["train", "--data", str(tmp), "--out", str(tmp / "m.npz")], "exists; pass --overwrite"),
        "train --out DIR": (["train", "--data", str(tmp), "--out", str(tmp)], "is a directory"),
        "train --model": (["train", "--data", str(tmp), "--out", str(tmp / "n.npz"), "--model", "ternary"], "--arch"),
        "train --arch": (["train", "--data", str(tmp), "--out", str(tmp / "n.npz"), "--arch", "resnet"], "unknown --arch"),
        "train --teacher": (["train", "--data", str(tmp), "--out", str(tmp / "n.npz"), "--teacher", "nope"], "--teacher"),
        "infer bad wav": (["infer", str(tmp / "file.txt")], "file.txt"),
        "eval --model": (["eval", "--data", str(tmp), "--model", str(tmp / "file.txt")], "not a ternkws checkpoint"),
        "flash --model": (["flash", "--bitstream", str(tmp / "top.bin"), "--model", "nope"], "no such checkpoint"),
        "synth --units": (["synth", "--unit", "post_op", "--units", "post_op"], "--units goes with --sweep"),
    }


@pytest.mark.parametrize("case", list(_bad_cases(Path("TMP"))))
def test_user_errors_are_one_line_and_exit_2(case, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "m.npz").write_bytes(b"")
    (tmp_path / "top.bin").write_bytes(b"\0")
    argv, message = _bad_cases(tmp_path)[case]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert message in _one_error_line(err, argv[0]), err
    assert not (tmp_path / "file.txt" / "x.v").exists()


@pytest.mark.parametrize("argv, message", [
    (["infer"], "the following arguments are required: WAV"),
    (["eval"], "the following arguments are required: --data"),
    (["synth"], "one of the arguments --unit --sweep --render is required"),
    (["run", YES], "one of the arguments --port --sim is required"),
    (["sim", "--simulator", "ghdl", YES], "invalid choice: 'ghdl'"),
    (["infer", "--bogus", YES], "unrecognized arguments: --bogus"),
])
def test_usage_errors_exit_2_with_the_usage(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    first, *rest = err.strip().splitlines()
    assert first.startswith(f"ternkws {argv[0]}: error: ") and message in first
    assert rest[0].startswith(f"usage: ternkws {argv[0]}") and "Traceback" not in err


def test_console_script_verilog_to_a_directory(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ternkws.cli", "verilog", "-o", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "is a directory" in r.stderr


# -- several files: go on past a bad one ------------------------------------------------------------------

def test_infer_goes_on_past_bad_files(tmp_path, capsys):
    missing, text = str(tmp_path / "missing.wav"), tmp_path / "text.wav"
    text.write_text("not audio")
    assert main(["infer", missing, YES, str(text)]) == 2
    out, err = capsys.readouterr()
    assert f"{YES}: " in out and "1 clip(s) classified" in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and missing in lines[0] and str(text) in lines[1]
    assert lines[2] == "ternkws infer: 2 of 3 files refused (errors above)"


def _fake_rtl(monkeypatch):
    """sim without a simulator: run_rtl answers the golden logits (the CLI's input loop is under test)."""
    from ternkws.golden.network import forward_int
    from ternkws.sim import accelerator_verilator, cocotb_runner

    calls = []

    def run_rtl(model, config, windows, **kwargs):
        calls.append(len(windows))
        results = []
        for xq in windows:
            ref = forward_int(model.topology, model.int_arrays, xq)
            results.append((np.asarray(ref), int(np.argmax(ref)), 1000))
        return results, {"total_seconds": 1.0, "sim_seconds": 0.5}

    monkeypatch.setattr(accelerator_verilator, "run_rtl", run_rtl)
    monkeypatch.setattr(cocotb_runner, "simulators_available", lambda: ["verilator", "icarus"])
    return calls


def test_sim_reads_every_file_first_and_simulates_the_good_ones(tmp_path, monkeypatch, capsys):
    calls = _fake_rtl(monkeypatch)
    missing = str(tmp_path / "missing.wav")
    assert main(["sim", "--json", missing, YES, str(SAMPLES / "no.wav")]) == 2
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert calls == [2] and [c["file"] for c in d["clips"]] == [YES, str(SAMPLES / "no.wav")]
    assert d["all_bit_exact"] and d["errors"] == [{"file": missing, "error": f"{missing}: no such file"}]
    assert err.splitlines()[0] == f"ternkws sim: error: {missing}: no such file"
    assert "ternkws sim: 1 of 3 files refused (errors above); going on with the other 2" in err


def test_sim_all_files_bad(tmp_path, monkeypatch, capsys):
    calls = _fake_rtl(monkeypatch)
    a, b = str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    assert main(["sim", a, b]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert calls == [] and len(lines) == 3 and lines[2] == "ternkws sim: error: none of the 2 files could be used (errors above)"
    assert main(["sim", a]) == 2                              # one file: its own line is the whole report
    assert capsys.readouterr().err.strip() == f"ternkws sim: error: {a}: no such file" and calls == []


def test_run_goes_on_past_a_bad_file(tmp_path, tone_wav, monkeypatch, capsys):
    from test_run import PyBoard, _patch_port, _tiny_model
    model = _tiny_model(tmp_path / "tiny.npz")
    _patch_port(monkeypatch, PyBoard(model))
    good, missing = str(tone_wav("a.wav")), str(tmp_path / "missing.wav")
    assert main(["run", "--port", "/dev/fake", "--model", model.path, "--json", missing, good]) == 2
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert [c["file"] for c in d["clips"]] == [good] and d["all_bit_exact"]
    assert d["errors"] == [{"file": missing, "error": f"{missing}: no such file"}]
    assert "ternkws run: 1 of 2 files refused" in err


# -- --json: the JSON document alone on stdout ------------------------------------------------------------

def _json_only(capsys):
    out = capsys.readouterr().out
    return json.loads(out)        # raises on any message before or after the document


def test_json_ternary_infer(capsys):
    assert main(["ternary", "--seed", "1", "--shape", "4x8", "--json"]) == 0
    assert _json_only(capsys)["shape"] == [4, 8]
    assert main(["infer", "--json", YES, str(SAMPLES / "no.wav")]) == 0
    assert len(_json_only(capsys)["clips"]) == 2


def test_json_eval_twice_with_the_cache_in_the_cache_dir(tmp_path, monkeypatch, capsys):
    from ternkws.golden.train.tinydata import make_tiny_dataset
    data = make_tiny_dataset(tmp_path / "datasets" / "data", per_class=(1, 1, 1), seed=4)
    monkeypatch.setenv("TERNKWS_CACHE_DIR", str(tmp_path / "cache"))
    before = sorted(p.name for p in data.parent.iterdir())
    runs = []
    for _ in range(2):                # the second run reads the cache (and used to say so on stdout)
        assert main(["eval", "--data", str(data), "--json", "--jobs", "1"]) == 0
        out, err = capsys.readouterr()
        runs.append(json.loads(out))
    assert "from cache" in err
    assert runs[0] == runs[1] and runs[0]["n"] == 12
    assert sorted(p.name for p in data.parent.iterdir()) == before          # nothing beside the data
    assert len(list((tmp_path / "cache" / "features").glob("data-*.npz"))) == 1


def test_cache_dir_default(monkeypatch, tmp_path):
    from ternkws.golden.train.features import cache_path, cache_root
    monkeypatch.delenv("TERNKWS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "ternkws"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "ternkws"
    monkeypatch.setenv("TERNKWS_CACHE_DIR", str(tmp_path / "c"))
    a, b = cache_path(tmp_path / "x" / "data", "k"), cache_path(tmp_path / "y" / "data", "k")
    assert a.parent == tmp_path / "c" / "features" and a != b


def test_json_sim(monkeypatch, capsys):
    _fake_rtl(monkeypatch)
    assert main(["sim", "--json", YES]) == 0
    d = _json_only(capsys)
    assert d["all_bit_exact"] and d["errors"] == []


def test_json_run(tmp_path, tone_wav, monkeypatch, capsys):
    from test_run import PyBoard, _patch_port, _tiny_model
    model = _tiny_model(tmp_path / "tiny.npz")
    _patch_port(monkeypatch, PyBoard(model))
    assert main(["run", "--port", "/dev/fake", "--model", model.path, "--json", str(tone_wav())]) == 0
    assert _json_only(capsys)["all_bit_exact"]


def test_json_build_and_synth(tmp_path, monkeypatch, capsys):
    from ternkws.boards import build, units

    def fake_build(board, model, variant, out, *, model_note="", log=print, seed=None, **kwargs):
        log("placing")
        return {"board": board.name, "fits": False, "model": {"id": model.model_id}}

    monkeypatch.setattr(build, "build_board", fake_build)
    assert main(["build", "--json", "--out", str(tmp_path / "b")]) == 1          # does not fit: 1
    assert _json_only(capsys)["fits"] is False

    def fake_measure(unit, lanes, device, *, log=None, **kwargs):
        if log:
            log("synthesizing")
        return {"unit": unit, "lanes": lanes}

    monkeypatch.setattr(units, "measure", fake_measure)
    assert main(["synth", "--unit", "post_op", "--json"]) == 0
    assert _json_only(capsys) == {"unit": "post_op", "lanes": 1}


def test_json_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TERNKWS_BUILD_DIR", str(tmp_path / "build"))
    for _ in range(2):
        assert main(["report", "--out", "r", "--json"]) == 0
        assert "fpgas" in _json_only(capsys)


# -- flash --model: the check run's advice relies on ------------------------------------------------------

def test_flash_model_checks_the_build_report(tmp_path, monkeypatch, capsys):
    log = tmp_path / "argv"
    prog = tmp_path / "iceprog"
    prog.write_text(f"#!/bin/sh\necho \"$@\" > {log}\n")
    prog.chmod(0o755)
    monkeypatch.setenv("ICEPROG", str(prog))
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\0")
    argv = ["flash", "--board", "icebreaker", "--bitstream", str(bit), "--model", "default"]
    assert main(argv) == 2
    assert "no report.json beside it" in _one_error_line(capsys.readouterr().err, "flash")
    (tmp_path / "report.json").write_text(json.dumps({"model": {"id": checkpoint.load("baseline").model_id}}))
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, "flash")
    assert "was built from model" in line and "ternkws build --board icebreaker --model default" in line
    assert not log.exists()
    (tmp_path / "report.json").write_text(json.dumps({"model": {"id": checkpoint.load().model_id}}))
    assert main(argv) == 0 and log.read_text().split() == [str(bit)]


# -- train --out and make train ---------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_train_writes_a_new_file():
    def dry(*args):
        r = subprocess.run(["make", "-n", "train", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [line for line in r.stdout.splitlines() if " train " in line][-1]

    line = dry()
    assert re.search(r"--out build/models/default-\d{8}-\d{6}\.npz", line) and "--overwrite" not in line
    assert "golden/models/default.npz" not in line and "--arch ternary" in line
    line = dry("OUT=golden/models/default.npz")
    assert "--out golden/models/default.npz" in line and "--overwrite" not in line
    assert "--overwrite" in dry("OUT=golden/models/default.npz", "OVERWRITE=1")
    # the bundled models' recipes: the ternary default distilled from the baseline, 30 epochs; learned 20
    assert "--epochs 30" in line and "--teacher baseline" in line
    learned = dry("ARCH=learned")
    assert "--epochs 20" in learned and "--teacher" not in learned
    assert "--teacher" not in dry("TEACHER=") and "--epochs 5" in dry("EPOCHS=5")
