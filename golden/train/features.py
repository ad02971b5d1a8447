"""Feature extraction for training and evaluation: golden.features.mfcc once per clip, cached.

No torch here (golden/evaluate.py uses it too). The cache is one .npz file in the ternkws cache folder,
`cache_root()/features/<data folder name>-<path hash>-<key>.npz` (cache_root(): $TERNKWS_CACHE_DIR, else
$XDG_CACHE_HOME/ternkws, else ~/.cache/ternkws; never beside the data folder). The key is a hash of
the example list (source, label, split, speaker, file size and mtime) and of the
FeatureConfig: a regenerated dataset or a different feature setting never reads stale features. It
holds the raw float32 MFCCs (N, n_frames, n_mfcc); normalization happens later, with the statistics of
the train split (training) or of the checkpoint (evaluation).
"""

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ternkws.golden.features import FeatureConfig, mfcc
from ternkws.golden.labels import LABELS

CACHE_VERSION = 1
CACHE_DIR_ENV = "TERNKWS_CACHE_DIR"


@dataclass
class FeatureSet:
    """Raw MFCCs of a list of examples, with labels (indices into LABELS) and speakers."""
    mfcc: np.ndarray          # (N, n_frames, n_mfcc) float32
    labels: np.ndarray        # (N,) int64
    speakers: list
    sources: list
    splits: list

    def __len__(self):
        return len(self.labels)

    def subset(self, mask):
        idx = np.flatnonzero(mask)
        return FeatureSet(self.mfcc[idx], self.labels[idx], [self.speakers[i] for i in idx],
                          [self.sources[i] for i in idx], [self.splits[i] for i in idx])

    def split(self, name):
        return self.subset(np.array([s == name for s in self.splits], bool))


def examples_key(examples, cfg: FeatureConfig):
    h = hashlib.sha1()
    h.update(json.dumps({"v": CACHE_VERSION, "features": cfg.to_dict()}, sort_keys=True).encode())
    for e in examples:
        try:
            st = os.stat(e.path) if e.path is not None else None
            stamp = f"{st.st_size}:{st.st_mtime_ns}" if st else ""
        except OSError:
            stamp = "missing"
        h.update(f"{e.source}\t{e.label}\t{e.split}\t{e.speaker}\t{stamp}\n".encode())
    return h.hexdigest()[:16]


def cache_root():
    """The ternkws cache folder: $TERNKWS_CACHE_DIR, else $XDG_CACHE_HOME/ternkws, else ~/.cache/ternkws."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ternkws"


def cache_path(data_dir, key):
    """The feature cache of a data folder: the key covers the examples and the feature settings, the
    resolved folder's path is hashed in too (two datasets of the same name do not share a file)."""
    data_dir = Path(data_dir).resolve()
    where = hashlib.sha1(str(data_dir).encode()).hexdigest()[:8]
    return cache_root() / "features" / f"{data_dir.name}-{where}-{key}.npz"


def _one(args):
    example, cfg = args
    return mfcc(example.audio(), cfg)


def extract(examples, cfg=FeatureConfig(), jobs=None, progress=True, desc="features"):
    """(N, n_frames, n_mfcc) float32 MFCCs of `examples`, computed in `jobs` processes."""
    out = np.empty((len(examples), cfg.n_frames, cfg.n_mfcc), np.float32)
    jobs = jobs or min(2, os.cpu_count() or 1)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(examples), desc=desc, unit="clip", dynamic_ncols=True)
    work = [(e, cfg) for e in examples]
    if jobs > 1 and len(examples) >= 64:
        with get_context("fork" if os.name == "posix" else "spawn").Pool(jobs) as pool:
            for i, c in enumerate(pool.imap(_one, work, chunksize=32)):
                out[i] = c
                if bar:
                    bar.update(1)
    else:
        for i, w in enumerate(work):
            out[i] = _one(w)
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    return out


def load_features(data_dir, examples, cfg=FeatureConfig(), jobs=None, progress=True, cache=True):
    """FeatureSet of `examples` (from ternkws.golden.data.list_examples(data_dir, ...)), via the cache."""
    key = examples_key(examples, cfg)
    path = cache_path(data_dir, key) if cache else None
    labels = np.array([LABELS.index(e.label) for e in examples], np.int64)
    meta = ([e.speaker for e in examples], [e.source for e in examples], [e.split for e in examples])
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                x = f["mfcc"]
            if x.shape == (len(examples), cfg.n_frames, cfg.n_mfcc):
                if progress:
                    print(f"features: {len(examples)} clips from cache {path}", file=sys.stderr)
                return FeatureSet(x, labels, *meta)
        except (OSError, ValueError, KeyError):
            pass  # a broken cache file is recomputed
    x = extract(examples, cfg, jobs=jobs, progress=progress)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, mfcc=x)
            os.replace(tmp, path)
        except OSError as e:
            print(f"features: could not write the cache {path} ({e}); continuing without it", file=sys.stderr)
    return FeatureSet(x, labels, *meta)
