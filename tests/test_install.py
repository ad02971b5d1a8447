"""The distribution as a user installs it: a wheel (not editable) in a fresh venv, used from a directory
outside the checkout. One top-level import package, `ternkws`, with the layers as its subpackages; the
bundled model and clips travel inside it; build outputs go under the current directory.

The default test gives the fresh venv the dependencies of this venv through a path file (pip then
installs only the wheel, offline, in seconds); the slow one installs the wheel with its dependencies
from the package index, as a new user does.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # build from a copy of the sources: setuptools reuses <source>/build/lib, which may hold stale modules
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "data", "runs", "sim_build",
                                                             "__pycache__", "*.egg-info", ".pytest_cache"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (path,) = out.glob("ternkws-*.whl")
    return path


def test_wheel_holds_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"ternkws"}
    for sub in ("golden", "hw", "sim", "boards", "commands"):
        assert f"ternkws/{sub}/__init__.py" in names, sub
    assert "ternkws/golden/models/default.npz" in names
    assert "ternkws/golden/samples/yes.wav" in names
    assert "ternkws/golden/SPEC.md" in names


def _fresh_venv(where, wheel, shared_deps):
    venv.EnvBuilder(with_pip=True).create(where)
    py = where / "bin" / "python"
    if shared_deps:
        site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        # this venv's packages, as a plain path: its .pth files (our editable install) are not processed
        Path(site, "ternkws_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        cmd = [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    else:
        cmd = [str(py), "-m", "pip", "install", "-q", str(wheel)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return where / "bin"


def _run(bindir, args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TERNKWS_BUILD_DIR")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run([str(bindir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{args}: {r.stderr[-3000:]}"
    return r.stdout


def _check_installed(bindir, work):
    site = Path(_run(bindir, ["python", "-c", "import ternkws.golden, os; print(os.path.dirname("
                                               "os.path.dirname(ternkws.golden.__file__)))"], work).strip())
    assert ROOT not in site.parents and site.name == "ternkws", site
    # the layers are ternkws subpackages only: no top-level golden / hw / sim / boards
    for name in ("golden", "hw", "sim", "boards"):
        out = _run(bindir, ["python", "-c", f"import importlib.util; print(importlib.util.find_spec({name!r}))"],
                   work)
        assert out.strip() == "None", (name, out)
    before = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)

    samples = site / "golden" / "samples"
    out = json.loads(_run(bindir, ["ternkws", "infer", "--json", str(samples / "yes.wav"),
                                   str(samples / "no.wav")], work))
    assert [c["file"] for c in out["clips"]] == [str(samples / "yes.wav"), str(samples / "no.wav")]
    assert Path(out["model"]) == site / "golden" / "models" / "default.npz"
    # the same answer as this checkout's golden model on the same clips
    from ternkws.golden.checkpoint import load
    from ternkws.golden.pipeline import predict_wav
    model = load()
    for clip in out["clips"]:
        p = predict_wav(model, ROOT / "golden" / "samples" / Path(clip["file"]).name)
        assert clip["class"] == p.label and clip["logits_int8"] == [int(v) for v in p.logits_int], clip

    _run(bindir, ["ternkws", "verilog", "-o", "acc.v"], work)
    text = (work / "acc.v").read_text()
    assert "module ternkws_accelerator" in text and "model id" in text

    after = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)
    assert after == before, "a command wrote into the installed package"


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    bindir = _fresh_venv(tmp_path / "venv", wheel, shared_deps=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    _check_installed(bindir, work)


@pytest.mark.slow
def test_installed_wheel_with_dependencies_from_the_index(wheel, tmp_path):
    bindir = _fresh_venv(tmp_path / "venv", wheel, shared_deps=False)
    work = tmp_path / "elsewhere"
    work.mkdir()
    _check_installed(bindir, work)
