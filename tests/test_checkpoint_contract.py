"""The checkpoint contract (golden/contract.py, golden/SPEC.md section 2.2) is enforced where a checkpoint
is read: `checkpoint.load` refuses every width and range the RTL assumes when broken, with one sentence
naming the entry, and every CLI command that reads a checkpoint refuses it before any simulation or
synthesis runs."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ternkws.golden import checkpoint, contract
from ternkws.golden.errors import UserError
from ternkws.golden.network import forward_int

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "golden" / "samples" / "yes.wav"


def _raw(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def default_raw():
    return _raw(checkpoint.DEFAULT_MODEL)


@pytest.fixture(scope="module")
def baseline_raw():
    return _raw(checkpoint.BASELINE_MODEL)


def _write(raw, path, edit):
    data = {k: np.array(v) for k, v in raw.items()}
    edit(data)
    np.savez(path, **data)
    return path


def setv(key, value, index=0, dtype=None):
    """Set element `index` of the int/float array `key` (widening its dtype when asked)."""
    def edit(d):
        a = d[key].astype(dtype) if dtype is not None else d[key].copy()
        a.reshape(-1)[index] = value
        d[key] = a
    return edit


def config(fn):
    def edit(d):
        cfg = json.loads(str(d["__config__"]))
        fn(cfg)
        d["__config__"] = np.array(json.dumps(cfg))
    return edit


def both(*edits):
    def edit(d):
        for e in edits:
            e(d)
    return edit


def _topology(**kw):
    return config(lambda c: c["topology"].update(**kw))


def _features(**kw):
    return config(lambda c: c["features"].update(**kw))


def _classes(n):
    def fn(c):
        c["topology"]["n_classes"] = n
        c["labels"] = [f"k{i}" for i in range(n)]
    return config(fn)


def _block(**kw):
    return config(lambda c: c["topology"]["blocks"][0].update(**kw))


def _fill_classifier(value):
    def edit(d):
        d["classifier.q.weight"] = np.full_like(d["classifier.q.weight"], value)
    return edit


# (id, edit, substrings the message must contain). One case per bound and side.
DEFAULT_CASES = [
    # 16-bit BN multipliers
    ("mult 17-bit", setv("block1.0.q.mult", 40000, 3), ["block1.0.q.mult[3] = 40000", "[-32768, 32767]"]),
    ("mult 2^15", setv("prologue.q.mult", 2 ** 15), ["prologue.q.mult[0] = 32768", "16-bit"]),
    ("mult -2^15-1", setv("final.q.mult", -2 ** 15 - 1, 5), ["final.q.mult[5] = -32769"]),
    ("mult_res 2^15", setv("block2.0.q.mult_res", 2 ** 15, 1), ["block2.0.q.mult_res[1] = 32768"]),
    ("mult_res -2^15-1", setv("block3.0.q.mult_res", -2 ** 15 - 1), ["block3.0.q.mult_res[0] = -32769"]),
    # 32-bit BN biases
    ("bias 2^31", setv("epilogue.q.bias", 2 ** 31, 7), ["epilogue.q.bias[7] = 2147483648",
                                                         "[-2147483648, 2147483647]"]),
    ("bias -2^31-1", setv("prologue.q.bias", -2 ** 31 - 1), ["prologue.q.bias[0] = -2147483649"]),
    # rounding shifts
    ("shift 41", setv("final.q.shift", contract.SHIFT_MAX + 1), ["final.q.shift = 41", "[0, 40]"]),
    ("shift -1", setv("block1.0.q.shift", -1), ["block1.0.q.shift = -1", "[0, 40]"]),
    ("dw_shift 41", setv("epilogue.q.dw_shift", contract.DW_SHIFT_MAX + 1), ["epilogue.q.dw_shift = 41"]),
    ("dw_shift -1", setv("prologue.q.dw_shift", -1), ["prologue.q.dw_shift = -1"]),
    # int8 weights
    ("dw 128", setv("block2.0.q.dw", 128, 20, np.int16), ["block2.0.q.dw[1, 5] = 128", "int8", "[-128, 127]"]),
    ("dw -129", setv("prologue.q.dw", -129, 0, np.int16), ["prologue.q.dw[0, 0] = -129", "int8"]),
    ("classifier weight 128", setv("classifier.q.weight", 128, 129, np.int16),
     ["classifier.q.weight[1, 1] = 128", "int8"]),
    ("classifier weight -129", setv("classifier.q.weight", -129, 0, np.int16), ["classifier.q.weight[0, 0] = -129"]),
    ("int array of floats", lambda d: d.update({"final.q.mult": d["final.q.mult"].astype(np.float32)}),
     ["final.q.mult", "integers", "float32"]),
    # classifier bias and the 32-bit logits
    ("classifier bias 2^31+5", setv("classifier.q.bias", 2 ** 31 + 5, 2),
     ["classifier.q.bias[2] = 2147483653", "[-1073741824, 1073741824]"]),
    ("classifier bias 2^30+1", setv("classifier.q.bias", 2 ** 30 + 1), ["classifier.q.bias[0] = 1073741825"]),
    ("classifier bias -2^30-1", setv("classifier.q.bias", -2 ** 30 - 1, 11), ["classifier.q.bias[11] = -1073741825"]),
    # every bias within 2^30, but 1023 frames of pool sums (the largest window) overflow 32-bit logits
    ("worst-case logit > 2^31-1", both(_features(n_frames=1023), _fill_classifier(127),
                                       setv("classifier.q.bias", 2 ** 30, 4)),
     ["classifier.q.bias[4] = 1073741824", "logit 4", "32-bit", "[-2147483648, 2147483647]"]),
    ("worst-case logit < -2^31", both(_features(n_frames=1023), _fill_classifier(-128),
                                      setv("classifier.q.bias", -2 ** 30, 0)),
     ["classifier.q.bias[0] = -1073741824", "logit 0", "32-bit"]),
    # finite floats, feature normalisation, BN variance, scales
    ("features.mean NaN", setv("features.mean", np.nan, 5), ["features.mean[5] is nan", "finite"]),
    ("features.mean inf", setv("features.mean", np.inf, 0), ["features.mean[0] is inf"]),
    ("features.scale -inf", setv("features.scale", -np.inf, 3), ["features.scale[3] is -inf"]),
    ("features.scale 0", setv("features.scale", 0.0, 2), ["features.scale[2] = 0.0", "> 0"]),
    ("features.scale < 0", setv("features.scale", -1.5, 63), ["features.scale[63] = -1.5", "> 0"]),
    ("float weight NaN", setv("block3.0.dw", np.nan, 4), ["block3.0.dw[0, 4] is nan"]),
    ("float bias inf", setv("classifier.bias", np.inf, 1), ["classifier.bias[1] is inf"]),
    ("bn gamma NaN", setv("epilogue.bn.gamma", np.nan, 9), ["epilogue.bn.gamma[9] is nan"]),
    ("bn var < 0", setv("block1.0.res.bn.var", -2.0, 6), ["block1.0.res.bn.var[6] = -2.0", ">= 0"]),
    ("scales NaN", config(lambda c: c["scales"].update(logit=float("nan"))), ["scales.logit", "finite"]),
    ("scales 0", config(lambda c: c["scales"].update(prologue=0.0)), ["scales.prologue", "> 0"]),
    # seeds, density
    ("seed not an integer", _topology(seed=1.5), ["topology.seed = 1.5", "integer"]),
    ("seed 2^48", _topology(seed=2 ** 48), ["seed", "2^48"]),
    ("seed < 0", _topology(seed=-1), ["seed", "-1"]),
    ("too many 1x1", _block(repeat=70000), ["1x1 layers", "65536"]),
    ("density 0", _topology(density=0.0), ["density", "(0, 1]"]),
    ("density 1.5", _topology(density=1.5), ["density", "(0, 1]"]),
    ("density NaN", _topology(density=float("nan")), ["density"]),
    ("density true", _topology(density=True), ["topology.density = True"]),
    # kernels, dilations, channels, classes, frames
    ("kernel even", _topology(prologue_kernel=12), ["prologue_kernel", "odd"]),
    ("kernel 65", _topology(epilogue_kernel=65), ["epilogue_kernel", "63"]),
    ("kernel not an integer", _topology(prologue_kernel=11.0), ["topology.prologue_kernel = 11.0", "integer"]),
    ("block kernel not an integer", _block(kernel=13.0), ["topology.blocks[0].kernel = 13.0", "integer"]),
    ("dilation 0", _topology(epilogue_dilation=0), ["epilogue_dilation", ">= 1"]),
    ("block dilation 0", _block(dilation=0), ["dilation", ">= 1"]),
    ("channels 2048", _topology(final_channels=2048), ["final_channels", "1024"]),
    ("channels 0", _block(channels=0), ["channels", "[1, 1024]"]),
    ("classes 64", _classes(64), ["n_classes = 64", "[2, 63]"]),
    ("classes 1", _classes(1), ["class"]),
    ("frames 0", _features(n_frames=0), ["features.n_frames = 0"]),
    ("frames not an integer", _features(n_frames=128.5), ["features.n_frames = 128.5", "integer"]),
    ("window > 16 bits", _features(n_frames=1100), ["n_frames", "70400", "65535"]),
    ("log_floor 0", _features(log_floor=0.0), ["features.log_floor", "> 0"]),
    ("f_min >= f_max", _features(f_min=8000.0), ["f_min", "f_max"]),
    ("feature float NaN", _features(f_max=float("nan")), ["features.f_max", "finite"]),
    ("labels not strings", config(lambda c: c.update(labels=list(range(12)))), ["labels", "strings"]),
]

BASELINE_CASES = [
    ("learned pw 128", setv("block2.0.q.pw", 128, 65, np.int16), ["block2.0.q.pw[1, 1] = 128", "int8"]),
    ("learned pw -129", setv("final.q.pw", -129, 0, np.int16), ["final.q.pw[0, 0] = -129", "int8"]),
    ("learned res.pw 128", setv("block1.0.q.res.pw", 128, 3, np.int16), ["block1.0.q.res.pw[0, 3] = 128", "int8"]),
    ("learned res.pw -129", setv("block3.0.q.res.pw", -129, 64, np.int16),
     ["block3.0.q.res.pw[1, 0] = -129", "int8"]),
    ("learned pw float NaN", setv("prologue.pw", np.nan, 7), ["prologue.pw[0, 7] is nan"]),
]


def _assert_refused(path, must):
    with pytest.raises(UserError) as info:
        checkpoint.load(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert msg.startswith(str(path)), msg
    for s in must:
        assert s in msg, (s, msg)
    return msg


@pytest.mark.parametrize("edit,must", [c[1:] for c in DEFAULT_CASES], ids=[c[0] for c in DEFAULT_CASES])
def test_out_of_contract_default_is_refused(tmp_path, default_raw, edit, must):
    _assert_refused(_write(default_raw, tmp_path / "bad.npz", edit), must)


@pytest.mark.parametrize("edit,must", [c[1:] for c in BASELINE_CASES], ids=[c[0] for c in BASELINE_CASES])
def test_out_of_contract_baseline_is_refused(tmp_path, baseline_raw, edit, must):
    _assert_refused(_write(baseline_raw, tmp_path / "bad.npz", edit), must)


def test_every_int_bound_has_a_case():
    """Each integer bound of the contract is exercised above, on both sides where it has two."""
    names = " ".join(m[0] for _, _, m in DEFAULT_CASES + BASELINE_CASES)
    for b in contract.INT_BOUNDS:
        key = re.escape(b.suffix.lstrip("."))
        assert re.search(rf"{key}(\[[\d, ]+\])? = {b.hi + 1}\b", names), b
        assert re.search(rf"{key}(\[[\d, ]+\])? = {b.lo - 1}\b", names), b


@pytest.mark.parametrize("path", [checkpoint.DEFAULT_MODEL, checkpoint.BASELINE_MODEL,
                                  checkpoint.MODELS_DIR / "budget.npz"], ids=lambda p: Path(p).stem)
def test_bundled_models_load(path):
    m = checkpoint.load(path)
    assert m.topology.n_classes == len(m.labels)


def _at_bounds(d):
    q_edits = [
        setv("prologue.q.mult", contract.MULT_MAX, 0), setv("prologue.q.mult", contract.MULT_MIN, 1),
        setv("block1.0.q.mult_res", contract.MULT_MAX, 0), setv("block1.0.q.mult_res", contract.MULT_MIN, 1),
        setv("block2.0.q.bias", contract.BIAS_MAX, 0), setv("block2.0.q.bias", contract.BIAS_MIN, 1),
        setv("prologue.q.dw", contract.WEIGHT_MIN, 0), setv("prologue.q.dw", contract.WEIGHT_MAX, 1),
        setv("classifier.q.weight", contract.WEIGHT_MIN, 0),
        setv("classifier.q.bias", contract.CLASSIFIER_BIAS_MAX, 0),
        setv("classifier.q.bias", -contract.CLASSIFIER_BIAS_MAX, 1),
        setv("block2.0.q.shift", contract.SHIFT_MAX), setv("epilogue.q.dw_shift", 0),
    ]
    for e in q_edits:
        e(d)


def test_checkpoint_at_the_exact_bounds_loads_and_runs(tmp_path, default_raw):
    path = _write(default_raw, tmp_path / "edge.npz", _at_bounds)
    m = checkpoint.load(path)
    assert int(m.int_arrays["prologue.q.mult"][0]) == 2 ** 15 - 1
    assert int(m.int_arrays["prologue.q.mult"][1]) == -2 ** 15
    assert int(m.int_arrays["classifier.q.bias"][0]) == 2 ** 30
    assert int(m.int_arrays["classifier.q.bias"][1]) == -2 ** 30
    rng = np.random.default_rng(0)
    for xq in (rng.integers(-128, 128, (m.features.n_frames, m.topology.n_mfcc)).astype(np.int8),
               np.full((m.features.n_frames, m.topology.n_mfcc), 127, np.int8)):
        logits = forward_int(m.topology, m.int_arrays, xq)
        assert logits.shape == (12,)
        assert not np.array_equal(logits, m.int_arrays["classifier.q.bias"])     # the pool is not all 0
        assert contract.LOGIT_MIN <= logits.min() and logits.max() <= contract.LOGIT_MAX


def test_features_scale_and_window_at_their_bounds_load(tmp_path, default_raw):
    # the largest window the host link counts, and a tiny but positive scale
    edit = both(_features(n_frames=contract.WINDOW_MAX // 64), setv("features.scale", 1e-30, 0))
    checkpoint.load(_write(default_raw, tmp_path / "edge.npz", edit))


def test_contract_is_the_one_definition():
    """The golden model and the RTL take their widths from golden/contract.py."""
    from ternkws.golden import network, post_op
    assert (contract.MULT_BITS, contract.BIAS_BITS, contract.Z_BITS, contract.LOGIT_BITS) == (16, 32, 48, 32)
    assert (post_op.MULT_BITS, post_op.BIAS_BITS, post_op.Z_BITS) == (16, 32, 48)
    assert network.MAX_SHIFT == contract.SHIFT_MAX == 40
    assert contract.MAX_ACC_WIDTH == 31 and contract.CLASSIFIER_BIAS_MAX == 2 ** 30
    for unit in ("golden/post_op.py", "golden/network.py", "hw/post_op.py"):
        source = (ROOT / unit).read_text()
        assert re.search(r"^from (ternkws\.golden|)\.?contract import", source, re.M), unit
        assert not re.search(r"^(MULT_BITS|BIAS_BITS|Z_BITS|LOGIT_BITS) *=", source, re.M), unit


def test_spec_lists_every_bound():
    """golden/SPEC.md's table of bounds names every integer bound of the contract and its range."""
    spec = (ROOT / "golden" / "SPEC.md").read_text()
    table = spec[spec.index("Bounds the loader enforces"):]
    table = table[:table.index("\n\n", table.index("|---"))]
    for b in contract.INT_BOUNDS:
        assert b.suffix.lstrip(".") in table, b.suffix
    for text in ("2^30", "2^31 - 1", "[0, 40]", "(0, 1]", "[2, 63]", "65,535", "[1, 63]", "[1, 1024]",
                 "2^48", "features.mean", "features.scale", "finite"):
        assert text in table, text


# --- the CLI refuses such checkpoints at load --------------------------------------------------------

BAD = {
    "mult17": (setv("block1.0.q.mult", 40000, 3), "block1.0.q.mult[3] = 40000"),
    "bias2^31+5": (setv("classifier.q.bias", 2 ** 31 + 5, 2), "classifier.q.bias[2] = 2147483653"),
    "nan-mean": (setv("features.mean", np.nan, 5), "features.mean[5] is nan"),
}


def _commands(model, tmp):
    wav = str(SAMPLE)
    return {
        "infer": ["infer", "--model", model, wav],
        "verilog": ["verilog", "--model", model, "-o", str(tmp / "out.v")],
        "sim": ["sim", "--model", model, wav],
        "synth": ["synth", "--unit", "ternary_mixer", "--device", "up5k", "--checkpoint", model],
        "build": ["build", "--board", "icebreaker", "--model", model, "--out", str(tmp / "build")],
        "run": ["run", "--sim", "--model", model, wav],
    }


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("command", ["infer", "verilog", "sim", "synth", "build", "run"])
def test_cli_refuses_out_of_contract_checkpoint(tmp_path, capsys, default_raw, case, command):
    from ternkws.cli import main

    edit, names = BAD[case]
    model = str(_write(default_raw, tmp_path / f"{case}.npz", edit))
    rc = main(_commands(model, tmp_path)[command])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ternkws {command}: error: {model}: ")
    assert names in lines[0]
    assert not (tmp_path / "out.v").exists() and not (tmp_path / "build").exists()
