"""Checkpoints: one versioned, self-describing .npz file (golden/SPEC.md section 4).

The file holds a JSON document under the key `__config__` (format, version, labels, topology,
features, feature normalisation, scales, metadata) and one array per parameter (float and int8).
`load` checks everything against the topology and against the contract of golden/contract.py (every
width and range the RTL assumes, finite floats; golden/SPEC.md section 2.2) and says in one sentence
what is wrong: the array, the offending value and index, and what is allowed.
"""

import json
import math
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

from . import contract
from .features import FeatureConfig
from .labels import LABELS
from .network import float_param_shapes, int_param_shapes
from .topology import Block, Topology, plan

FORMAT = "ternkws-checkpoint"
VERSION = 1
MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = MODELS_DIR / "default.npz"
BASELINE_MODEL = MODELS_DIR / "baseline.npz"
# The bundled models (golden/models/<name>.npz): what `--model NAME` names in every command.
BUNDLED_MODELS = {
    "default": "trained ternary 3x1x64 on the grouped pattern, the design",
    "iid": "the same on the iid pattern, same recipe (the pattern comparison)",
    "baseline": "learned 1x1 3x1x64, the stored-weights baseline",
    "budget": "ternary 3x2x128, the bigger ternary model (27% of the baseline's trained parameters)",
}


@dataclass
class Model:
    topology: Topology
    features: FeatureConfig
    labels: tuple
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    float_arrays: dict
    int_arrays: dict
    scales: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    path: str | None = None

    @property
    def plan(self):
        return plan(self.topology)

    @property
    def trained(self):
        return bool(self.meta.get("trained", False))

    @property
    def model_id(self):
        """A short stable id of the integer model (what the chip runs): first 8 hex of a CRC32."""
        import zlib
        crc = 0
        for k in sorted(self.int_arrays):
            crc = zlib.crc32(k.encode() + np.ascontiguousarray(self.int_arrays[k]).tobytes(), crc)
        top = self.topology.to_dict()
        if top.get("pattern") == "iid":
            del top["pattern"]       # the field's default: a checkpoint made before it keeps its id
        crc = zlib.crc32(json.dumps(top, sort_keys=True).encode(), crc)
        return f"{crc:08x}"

    def config(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "labels": list(self.labels),
            "topology": self.topology.to_dict(),
            "features": self.features.to_dict(),
            "scales": {k: float(v) for k, v in self.scales.items()},
            "meta": self.meta,
        }


def save(model: Model, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"__config__": np.array(json.dumps(model.config(), indent=1, sort_keys=True))}
    arrays["features.mean"] = np.asarray(model.feature_mean, np.float32)
    arrays["features.scale"] = np.asarray(model.feature_scale, np.float32)
    arrays.update({k: np.asarray(v) for k, v in model.float_arrays.items()})
    arrays.update({k: np.asarray(v) for k, v in model.int_arrays.items()})
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    model.path = str(path)
    return path


def resolve(name_or_path=None):
    """The checkpoint file `--model` names: None -> the bundled default; a bundled name (default, iid,
    baseline, budget: golden/models/<name>.npz) -> that file; anything else is a path (a file that is
    called `default` is ./default). UserError when the file does not exist."""
    if name_or_path is None:
        name_or_path = "default"
    name = str(name_or_path)
    if name in BUNDLED_MODELS:
        path = MODELS_DIR / f"{name}.npz"
        if not path.exists():
            raise UserError(f"bundled model '{name}' is not in this checkout ({path}); train it "
                            f"('ternkws train --out {path}') or pass a checkpoint file")
        return path
    path = Path(name_or_path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint (give a .npz file or a bundled model: "
                        f"{', '.join(BUNDLED_MODELS)})")
    return path


def load(path=None):
    """Load and validate a checkpoint: a file, a bundled name (see `resolve`), or `None` for the
    bundled default model.

    Everything the RTL assumes (golden/contract.py, golden/SPEC.md section 2.2) is checked here, so a
    checkpoint that loads is one the golden model, the Verilog and the board all run alike; each failure
    is one sentence naming the entry, the offending value and index, and the allowed range.
    """
    path = resolve(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a ternkws checkpoint (.npz expected: {e})") from None
    if "__config__" not in data:
        raise UserError(f"{path}: an .npz file but not a ternkws checkpoint (no __config__ entry)")
    try:
        cfg = json.loads(str(data.pop("__config__")))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: checkpoint config is not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: checkpoint config is a JSON {type(cfg).__name__}, not an object")
    if cfg.get("format") != FORMAT:
        raise UserError(f"{path}: format is {cfg.get('format')!r}, expected {FORMAT!r}")
    if cfg.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {cfg.get('version')}, this ternkws reads version "
                        f"{VERSION}; re-export it with this ternkws ('ternkws train') or use a matching release")
    _check_config_types(path, cfg)
    try:
        top = Topology.from_dict(cfg["topology"])
        feats = FeatureConfig.from_dict(cfg["features"])
        labels = tuple(cfg["labels"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: checkpoint config lacks or garbles {e}") from None
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if len(labels) != top.n_classes:
        raise UserError(f"{path}: {len(labels)} labels but the topology has {top.n_classes} classes")
    if feats.n_mfcc != top.n_mfcc:
        raise UserError(f"{path}: features give {feats.n_mfcc} MFCC but the network takes {top.n_mfcc}")
    _check_limits(path, top, feats)
    scales = cfg.get("scales", {})
    for k, v in scales.items():
        if not (_is_real(v) and math.isfinite(v) and v > 0):
            raise UserError(f"{path}: scales.{k} = {v!r} must be a finite number > 0 (an activation scale)")

    def take(key, shape, dtype=None):
        if key not in data:
            raise UserError(f"{path}: checkpoint does not fit its topology {top.name}: array {key!r} is missing")
        a = data.pop(key)
        if a.shape != tuple(shape):
            raise UserError(f"{path}: checkpoint does not fit its topology {top.name}: {key} has shape "
                            f"{a.shape}, the topology needs {tuple(shape)}")
        if dtype is None:
            if a.dtype.kind not in "fiu":
                raise UserError(f"{path}: {key} must hold real numbers (float32), not {a.dtype} values")
            _check_finite(path, key, a)
            return a
        b = contract.int_bound(key)
        if a.dtype.kind not in "iu":
            raise UserError(f"{path}: {key} must hold integers in [{b.lo}, {b.hi}] ({b.what}), not {a.dtype} values")
        _check_range(path, key, a, b)
        return a.astype(dtype)

    mean = take("features.mean", (top.n_mfcc,))
    scale = take("features.scale", (top.n_mfcc,))
    _check_positive(path, "features.scale", scale, "the int8 input map multiplies by it, golden/SPEC.md section 3")
    floats = {k: take(k, s) for k, s in float_param_shapes(top).items()}
    for k, v in floats.items():
        if k.endswith(".bn.var"):
            _check_positive(path, k, v, "a variance; the BN fold takes sqrt(var + eps)", strict=False)
    ints = {k: take(k, s, dt) for k, (s, dt) in int_param_shapes(top).items()}
    if data:
        raise UserError(f"{path}: checkpoint has arrays its topology {top.name} does not use: {sorted(data)[:4]}")
    _check_logits(path, ints["classifier.q.weight"], ints["classifier.q.bias"], feats.n_frames)
    return Model(top, feats, labels, mean, scale, floats, ints, scales, cfg.get("meta", {}), str(path))


# --- the contract checks of `load` (bounds: golden/contract.py) --------------------------------------

def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_fields(path, where, d, cls):
    """Types of the JSON fields of a dataclass section (Topology, Block, FeatureConfig): an int field
    takes an integer (not 13.0, not true), a float field a finite number."""
    if not isinstance(d, dict):
        raise UserError(f"{path}: checkpoint config field {where} must be an object, not {d!r}")
    for f in fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.type is int and (not isinstance(v, int) or isinstance(v, bool)):
            raise UserError(f"{path}: {where}.{f.name} = {v!r} must be an integer")
        if f.type is float and not (_is_real(v) and math.isfinite(v)):
            raise UserError(f"{path}: {where}.{f.name} = {v!r} must be a finite number")
        if f.type is str and not isinstance(v, str):
            raise UserError(f"{path}: {where}.{f.name} = {v!r} must be a string")


def _check_config_types(path, cfg):
    top, feats, labels = cfg.get("topology"), cfg.get("features"), cfg.get("labels")
    if top is not None:
        _check_fields(path, "topology", top, Topology)
        blocks = top.get("blocks", [])
        if not isinstance(blocks, list):
            raise UserError(f"{path}: topology.blocks must be a list of blocks, not {blocks!r}")
        for i, b in enumerate(blocks):
            _check_fields(path, f"topology.blocks[{i}]", b, Block)
    if feats is not None:
        _check_fields(path, "features", feats, FeatureConfig)
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(v, str) for v in labels)):
        raise UserError(f"{path}: labels must be a list of class names (strings), not {labels!r}")
    scales = cfg.get("scales", {})
    if not isinstance(scales, dict):
        raise UserError(f"{path}: scales must be an object of layer name -> scale, not {scales!r}")


def _check_limits(path, top, feats):
    """The shape limits of golden/contract.py (Topology.validate checks kernels, channels, density and the
    seed range too; these are the RTL's, from the contract)."""
    def need(cond, msg):
        if not cond:
            raise UserError(f"{path}: {msg}")
    need(contract.CLASSES_MIN <= top.n_classes <= contract.CLASSES_MAX,
         f"topology.n_classes = {top.n_classes} is outside [{contract.CLASSES_MIN}, {contract.CLASSES_MAX}], the "
         f"classes the host link's RESULT reply carries (1 + 4 bytes per logit in 255)")
    need(0 <= top.seed < 1 << contract.BASE_SEED_BITS,
         f"topology.seed = {top.seed} is outside [0, 2^{contract.BASE_SEED_BITS}), so the per-layer seeds "
         f"seed * 2^{contract.MIXER_INDEX_BITS} + n would not fit the generator's {contract.SEED_BITS} bits")
    n_mixers = 3 + sum(b.repeat + 1 for b in top.blocks)    # prologue, epilogue, final; a residual per block
    need(n_mixers <= contract.MAX_MIXERS,
         f"the topology has {n_mixers} 1x1 layers, more than {contract.MAX_MIXERS} (the 1x1 index n of the "
         f"per-layer seed seed * 2^{contract.MIXER_INDEX_BITS} + n is {contract.MIXER_INDEX_BITS} bits)")
    need(isinstance(top.density, (int, float)) and not isinstance(top.density, bool) and 0 < top.density <= 1,
         f"topology.density = {top.density!r} is outside (0, 1] (the generator's threshold)")
    channels = [("n_mfcc", top.n_mfcc), ("prologue_channels", top.prologue_channels),
                ("epilogue_channels", top.epilogue_channels), ("final_channels", top.final_channels)]
    channels += [(f"blocks[{i}].channels", b.channels) for i, b in enumerate(top.blocks)]
    for name, c in channels:
        need(1 <= c <= contract.CHANNELS_MAX, f"topology.{name} = {c} is outside [1, {contract.CHANNELS_MAX}] "
             f"(the mixer accumulators fit {contract.MAX_ACC_WIDTH} bits up to there)")
    kernels = [("prologue_kernel", top.prologue_kernel), ("epilogue_kernel", top.epilogue_kernel)]
    kernels += [(f"blocks[{i}].kernel", b.kernel) for i, b in enumerate(top.blocks)]
    for name, k in kernels:
        need(1 <= k <= contract.KERNEL_MAX and k % 2 == 1,
             f"topology.{name} = {k} must be odd and in [1, {contract.KERNEL_MAX}] (centred 'same' padding)")
    dilations = [("epilogue_dilation", top.epilogue_dilation)]
    dilations += [(f"blocks[{i}].dilation", b.dilation) for i, b in enumerate(top.blocks)]
    for name, d in dilations + [(f"blocks[{i}].repeat", b.repeat) for i, b in enumerate(top.blocks)]:
        need(d >= 1, f"topology.{name} = {d} must be >= 1")
    need(feats.n_frames >= contract.FRAMES_MIN, f"features.n_frames = {feats.n_frames} must be >= {contract.FRAMES_MIN}")
    for f in fields(FeatureConfig):
        v = getattr(feats, f.name)
        if f.type is int:
            need(v >= 1, f"features.{f.name} = {v} must be >= 1")
    need(feats.n_frames * top.n_mfcc <= contract.WINDOW_MAX,
         f"a window of features.n_frames x n_mfcc = {feats.n_frames} x {top.n_mfcc} = "
         f"{feats.n_frames * top.n_mfcc} values is more than {contract.WINDOW_MAX} (the host link's 16-bit count)")
    need(0 <= feats.f_min < feats.f_max, f"features.f_min = {feats.f_min} and f_max = {feats.f_max} must satisfy "
         f"0 <= f_min < f_max (the mel filter bank)")
    need(feats.log_floor > 0, f"features.log_floor = {feats.log_floor} must be > 0 (the log of the mel energies)")


def _where(key, a, flat):
    """`key[i, j]` of the element at flat position `flat` (just `key` for a scalar)."""
    if a.ndim == 0:
        return key
    return f"{key}[{', '.join(str(int(i)) for i in np.unravel_index(flat, a.shape))}]"


def _check_finite(path, key, a):
    bad = ~np.isfinite(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: {_where(key, a, i)} is {a.ravel()[i]}, but every float of a checkpoint must be "
                        f"finite (NaN or inf gives garbage features, weights or logits)")


def _check_positive(path, key, a, why, strict=True):
    bad = (a <= 0) if strict else (a < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: {_where(key, a, i)} = {a.ravel()[i]} must be {'>' if strict else '>='} 0 ({why})")


def _check_range(path, key, a, bound):
    bad = (a < bound.lo) | (a > bound.hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: {_where(key, a, i)} = {int(a.ravel()[i])} is outside [{bound.lo}, {bound.hi}], "
                        f"the range of {bound.what} ({bound.why}; golden/SPEC.md section 2.2)")


def _check_logits(path, weight, bias, frames):
    """Every logit of every input fits the RTL's LOGIT_BITS-bit logit register."""
    for k in range(len(bias)):
        lo, hi = contract.logit_range(weight[k], bias[k], frames)
        if lo < contract.LOGIT_MIN or hi > contract.LOGIT_MAX:
            worst = hi if hi > contract.LOGIT_MAX else lo
            raise UserError(
                f"{path}: classifier.q.bias[{k}] = {int(bias[k])} with the int8 weights classifier.q.weight[{k}] "
                f"lets logit {k} reach {worst} over {frames} frames of pool sums, outside the {contract.LOGIT_BITS}-bit "
                f"range [{contract.LOGIT_MIN}, {contract.LOGIT_MAX}] of the RTL's logits (golden/SPEC.md section 2.2)")


def make_model(top, float_arrays, calib_features, feature_mean, feature_scale, meta,
               features=FeatureConfig(), labels=LABELS):
    """Quantize float weights (PTQ on `calib_features`, normalized (N, T, n_mfcc)) into a Model."""
    from .network import quantize
    q, scales = quantize(top, float_arrays, calib_features, features.n_frames)
    return Model(top, features, tuple(labels), np.asarray(feature_mean, np.float32),
                 np.asarray(feature_scale, np.float32), {k: np.asarray(v, np.float32) for k, v in float_arrays.items()},
                 q, scales, dict(meta))
