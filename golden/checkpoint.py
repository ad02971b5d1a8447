"""Checkpoints: one versioned, self-describing .npz file (golden/SPEC.md section 4).

The file holds a JSON document under the key `__config__` (format, version, labels, topology,
features, feature normalisation, scales, metadata) and one array per parameter (float and int8).
`load` checks everything against the topology and says what is wrong and what to do.
"""

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

from .features import FeatureConfig
from .labels import LABELS
from .network import float_param_shapes, int_param_shapes
from .topology import Topology, plan

FORMAT = "ternkws-checkpoint"
VERSION = 1
MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = MODELS_DIR / "default.npz"
BASELINE_MODEL = MODELS_DIR / "baseline.npz"


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
        crc = zlib.crc32(json.dumps(self.topology.to_dict(), sort_keys=True).encode(), crc)
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


def load(path=None):
    """Load and validate a checkpoint; `None` loads the bundled default model."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint (the bundled default is {DEFAULT_MODEL})")
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
    if cfg.get("format") != FORMAT:
        raise UserError(f"{path}: format is {cfg.get('format')!r}, expected {FORMAT!r}")
    if cfg.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {cfg.get('version')}, this ternkws reads version "
                        f"{VERSION}; re-export it with this ternkws ('ternkws train') or use a matching release")
    try:
        top = Topology.from_dict(cfg["topology"])
        feats = FeatureConfig.from_dict(cfg["features"])
        labels = tuple(cfg["labels"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: checkpoint config lacks or garbles {e}") from None
    if len(labels) != top.n_classes:
        raise UserError(f"{path}: {len(labels)} labels but the topology has {top.n_classes} classes")
    if feats.n_mfcc != top.n_mfcc:
        raise UserError(f"{path}: features give {feats.n_mfcc} MFCC but the network takes {top.n_mfcc}")

    def take(key, shape, dtype=None):
        if key not in data:
            raise UserError(f"{path}: checkpoint does not fit its topology {top.name}: array {key!r} is missing")
        a = data.pop(key)
        if a.shape != tuple(shape):
            raise UserError(f"{path}: checkpoint does not fit its topology {top.name}: {key} has shape "
                            f"{a.shape}, the topology needs {tuple(shape)}")
        if dtype is not None:
            info = np.iinfo(dtype)
            if a.dtype.kind not in "iu" or (a.size and (a.min() < info.min or a.max() > info.max)):
                raise UserError(f"{path}: {key} must hold {np.dtype(dtype).name} integers")
            a = a.astype(dtype)
        return a

    mean = take("features.mean", (top.n_mfcc,))
    scale = take("features.scale", (top.n_mfcc,))
    floats = {k: take(k, s) for k, s in float_param_shapes(top).items()}
    ints = {k: take(k, s, dt) for k, (s, dt) in int_param_shapes(top).items()}
    if data:
        raise UserError(f"{path}: checkpoint has arrays its topology {top.name} does not use: {sorted(data)[:4]}")
    for k, v in ints.items():
        if k.endswith("shift") and not 0 <= int(v) <= 40:
            raise UserError(f"{path}: {k} = {int(v)} is outside [0, 40]")
    return Model(top, feats, labels, mean, scale, floats, ints, cfg.get("scales", {}), cfg.get("meta", {}), str(path))


def make_model(top, float_arrays, calib_features, feature_mean, feature_scale, meta,
               features=FeatureConfig(), labels=LABELS):
    """Quantize float weights (PTQ on `calib_features`, normalized (N, T, n_mfcc)) into a Model."""
    from .network import quantize
    q, scales = quantize(top, float_arrays, calib_features, features.n_frames)
    return Model(top, features, tuple(labels), np.asarray(feature_mean, np.float32),
                 np.asarray(feature_scale, np.float32), {k: np.asarray(v, np.float32) for k, v in float_arrays.items()},
                 q, scales, dict(meta))
