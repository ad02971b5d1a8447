"""The streaming benchmark (`ternkws eval --stream`): long continuous recordings assembled from the
speaker-held-out clips of a split, the golden streaming model and detector over them, hit rate, false
alarms per hour, a DET curve and detection latency (reports/streaming.{md,json,png}).

Recordings (`assemble`, deterministic in (data, split, minutes, seed)): `n` recordings of
`recording_minutes` each. Each is a noise bed (white, pink or brown in turn, -65 to -45 dBFS RMS) with
clips of the split laid on it one after another, a gap of 1-3 s of bed alone before each: in every
block of four items two keyword clips (the ten keywords in turn, each class's clips in a shuffled order,
none twice until all are used), one `unknown` clip and one `silence` clip, the block's order shuffled.
The sum is rounded to 16-bit PCM (what `--write-recordings` saves, so `ternkws listen` on a saved file
gives the same events). Ground truth per keyword: its label, onset = the clip's start + its `shift`
(the word's offset in the clip, from the manifest of a synthesized set; the energy onset otherwise),
end = the last 10-ms frame of the clip, after the onset, whose energy is above max(peak - 35 dB,
noise floor + 8 dB) (noise floor: the clip's 10th percentile frame energy).

Scoring (`score`): an event of class c matches a keyword of class c when the audio that made its score
(decision k-N+1's window start to decision k's window end) overlaps the word [onset, end]; events are
taken in time order, each matches the earliest such keyword not matched yet. A keyword with a match is
a hit; every other event is a false alarm (one on a keyword of another class also counts as a
substitution). Latency = the event's time (when it is known: the end of input frame k H + T - 1 + D)
minus the word's end. The DET curve sweeps the threshold over the margins seen.
"""

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ternkws.golden.errors import UserError

from .audio import SAMPLE_RATE, write_wav
from .data import MANIFEST, list_examples
from .labels import KEYWORDS
from .streaming import (DEFAULT_HOP, DEFAULT_REFRACTORY, DEFAULT_SMOOTH, DEFAULT_THRESHOLD, Decisions, FeatureStream,
                        StreamingNetwork, detector_config, fire, scores, stream_layout, threshold_int)

DEFAULT_MINUTES = 20.0
RECORDING_MINUTES = 5.0
GAP_S = (1.0, 3.0)
BED_DBFS = (-65.0, -45.0)
BED_COLORS = ("white", "pink", "brown")
CHUNK_FRAMES = 8192


@dataclass(frozen=True)
class Keyword:
    label: str
    onset: float        # seconds from the recording's start
    end: float
    source: str


@dataclass
class Recording:
    name: str
    samples: np.ndarray             # float32, 16-bit PCM values / 32768
    keywords: list
    items: list = field(default_factory=list)   # (kind, label, start_s, source)
    bed: str = ""

    @property
    def seconds(self):
        return len(self.samples) / SAMPLE_RATE


def _bed(rng, n, color):
    w = rng.standard_normal(n)
    if color != "white":
        spec = np.fft.rfft(w)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f) if color == "pink" else f
        spec[0] = 0.0
        w = np.fft.irfft(spec, n)
    return w / max(float(np.sqrt(np.mean(w ** 2))), 1e-12)


def _shifts(data_dir):
    """{file path: word offset in s} from a synthesized set's manifest (`shift=` in `augment`)."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return {}
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for tok in (row.get("augment") or "").split():
                if tok.startswith("shift=") and tok.endswith("s"):
                    out[str(Path(data_dir) / row["file"])] = float(tok[6:-1])
    return out


def word_bounds(clip, shift=None, frame=160):
    """(onset, end) in seconds of the word in a 1-s clip (module docstring)."""
    n = len(clip) // frame
    e = (np.asarray(clip[:n * frame], np.float64).reshape(n, frame) ** 2).mean(axis=1) + 1e-12
    thr = max(e.max() * 10 ** -3.5, np.percentile(e, 10) * 10 ** 0.8)
    above = np.flatnonzero(e >= thr)
    first = above[0] * frame / SAMPLE_RATE if len(above) else 0.0
    onset = first if shift is None else shift
    after = above[above * frame / SAMPLE_RATE + frame / SAMPLE_RATE > onset]
    end = (after[-1] + 1) * frame / SAMPLE_RATE if len(after) else min(onset + 0.3, len(clip) / SAMPLE_RATE)
    return onset, max(end, onset + 0.05)


def assemble(data_dir, split="test", minutes=DEFAULT_MINUTES, seed=0, recording_minutes=RECORDING_MINUTES):
    """The benchmark's recordings (module docstring). UserError when the split lacks keywords."""
    examples = list_examples(data_dir, split)
    by_label = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    kws = [k for k in KEYWORDS if by_label.get(k)]
    if not kws:
        raise UserError(f"{data_dir}: no keyword clips in the {split} split to build streaming recordings from")
    shifts = _shifts(data_dir)
    rng = np.random.default_rng([seed, 11])
    queues = {k: list(rng.permutation(len(v))) for k, v in by_label.items()}
    used = {k: 0 for k in by_label}

    def take(label):
        v = by_label[label]
        i = queues[label][used[label] % len(v)]
        used[label] += 1
        return v[i]

    n_rec = max(1, int(np.ceil(minutes / recording_minutes - 1e-9)))
    per = minutes * 60.0 / n_rec
    kw_turn = 0
    recordings = []
    for r in range(n_rec):
        color = BED_COLORS[r % len(BED_COLORS)]
        level = rng.uniform(*BED_DBFS)
        target = int(per * SAMPLE_RATE)
        parts, items, keywords = [], [], []
        pos = 0
        block = []
        while True:
            if not block:
                block = ["keyword", "keyword"] + [k for k in ("unknown", "silence") if by_label.get(k)]
                block = [block[i] for i in rng.permutation(len(block))]
            kind = block.pop(0)
            gap = int(rng.uniform(*GAP_S) * SAMPLE_RATE)
            if pos + gap + SAMPLE_RATE + 2 * SAMPLE_RATE > target:
                break
            if kind == "keyword":
                label = kws[kw_turn % len(kws)]
                kw_turn += 1
            else:
                label = kind
            ex = take(label)
            clip = ex.audio().astype(np.float64)
            start = pos + gap
            parts.append((start, clip))
            items.append((kind, label, start / SAMPLE_RATE, ex.source))
            if kind == "keyword":
                a, b = word_bounds(clip, shifts.get(str(ex.path)))
                keywords.append(Keyword(label, start / SAMPLE_RATE + a, start / SAMPLE_RATE + b, ex.source))
            pos = start + len(clip)
        x = _bed(rng, target, color) * 10 ** (level / 20)
        for start, clip in parts:
            x[start:start + len(clip)] += clip
        x = np.clip(np.round(x * 32768.0), -32768, 32767) / 32768.0
        recordings.append(Recording(f"{split}-{seed}-{r}", x.astype(np.float32), keywords, items,
                                    f"{color} {level:.1f} dBFS"))
    return recordings


def write_recordings(recordings, folder):
    """Each recording as <name>.wav (16-bit) and <name>.csv (label, onset_s, end_s, source)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for rec in recordings:
        wav = folder / f"{rec.name}.wav"
        write_wav(wav, rec.samples)
        with open(folder / f"{rec.name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "onset_s", "end_s", "source"])
            for k in rec.keywords:
                w.writerow([k.label, f"{k.onset:.3f}", f"{k.end:.3f}", k.source])
        files.append(wav)
    return files


# --- running and scoring -------------------------------------------------------------------------------

@dataclass
class Stream:
    """One recording through the golden streaming model: its decisions and what scoring needs."""
    recording: Recording
    decisions: Decisions
    seconds: float


def run_stream(model, recording, hop=DEFAULT_HOP, causal=False, tail=True):
    """Decisions of one recording (features and network in chunks of CHUNK_FRAMES; then the Listener's
    tail of D + T/2 frames of digital silence)."""
    f = model.features
    net = StreamingNetwork.from_model(model, hop, causal)
    fs = FeatureStream(f, model.feature_mean, model.feature_scale)
    x = recording.samples
    if tail:
        x = np.concatenate([x, np.zeros((net.delay + f.n_frames // 2) * f.hop_length, np.float32)])
    step = CHUNK_FRAMES * f.hop_length
    parts = [net.push(fs.push(x[a:a + step])) for a in range(0, len(x), step)]
    return Stream(recording, Decisions.concat(parts, net.n_classes), recording.seconds)


def _times(model, d_index, d_frame, d_ready, smooth, hop):
    f = model.features
    sec = f.hop_length / f.sample_rate
    win = (f.win_length - f.hop_length) / f.sample_rate
    start = (np.asarray(d_index) - (smooth - 1)) * hop * sec
    end = np.asarray(d_frame) * sec + sec + win
    ready = np.asarray(d_ready) * sec + sec + win
    return start, end, ready


def score(model, streams, theta, smooth, refractory, hop, margins=None):
    """Hits, false alarms and latencies of every stream at the integer threshold theta."""
    res = {"keywords": 0, "hits": 0, "false_alarms": 0, "substitutions": 0, "latency": [], "per_class": {},
           "seconds": 0.0}
    for k in KEYWORDS:
        res["per_class"][k] = [0, 0]
    for i, s in enumerate(streams):
        d = s.decisions
        best, margin = margins[i] if margins is not None else scores(d.logits, _cfg(model, theta, smooth, refractory))[1:]
        fired, _ = fire(d.index, margin, best, theta, refractory)
        start, end, ready = _times(model, d.index, d.frame, d.ready, smooth, hop)
        kws = s.recording.keywords
        matched = [False] * len(kws)
        res["keywords"] += len(kws)
        res["seconds"] += s.seconds
        for kw in kws:
            res["per_class"].setdefault(kw.label, [0, 0])[1] += 1
        for j in fired:
            label = model.labels[int(best[j])]
            hit = None
            for m, kw in enumerate(kws):
                if not matched[m] and kw.label == label and start[j] < kw.end and end[j] > kw.onset:
                    hit = m
                    break
            if hit is None:
                res["false_alarms"] += 1
                if any(kw.label != label and start[j] < kw.end and end[j] > kw.onset for kw in kws):
                    res["substitutions"] += 1
            else:
                matched[hit] = True
                res["hits"] += 1
                res["per_class"][label][0] += 1
                res["latency"].append(float(ready[j] - kws[hit].end))
    return res


def _cfg(model, theta, smooth, refractory):
    from .streaming import DetectorConfig, keyword_classes
    return DetectorConfig(int(theta), keyword_classes(model.labels), smooth, refractory)


def _figures(res):
    hours = res["seconds"] / 3600.0
    lat = np.asarray(res["latency"])
    return {
        "keywords": res["keywords"], "hits": res["hits"],
        "hit_rate": res["hits"] / res["keywords"] if res["keywords"] else None,
        "false_alarms": res["false_alarms"], "substitutions": res["substitutions"],
        "fa_per_hour": res["false_alarms"] / hours if hours else None,
        "latency_s": ({"median": float(np.median(lat)), "mean": float(lat.mean()), "p90": float(np.percentile(lat, 90)),
                       "min": float(lat.min()), "max": float(lat.max())} if len(lat) else None),
        "per_class_hit_rate": {k: (h / n if n else None) for k, (h, n) in res["per_class"].items()},
    }


def evaluate_streams(model, streams, threshold, smooth, refractory, hop, sweep=60):
    """Figures at `threshold` (float logit units per decision) and the DET curve (list of points)."""
    scale = float(model.scales.get("logit", 1.0))
    cfg = _cfg(model, 0, smooth, refractory)
    margins = [scores(s.decisions.logits, cfg)[1:] for s in streams]
    theta = threshold_int(threshold, smooth, scale)
    at = _figures(score(model, streams, theta, smooth, refractory, hop, margins))
    allm = np.concatenate([m for _, m in margins]) if margins else np.zeros(0)
    pos = allm[allm > 0] * scale / smooth
    grid = np.unique(np.round(np.concatenate([[0.0], np.quantile(pos, np.linspace(0, 1, sweep)) if len(pos) else [],
                                              [threshold]]), 3))
    det = []
    for t in grid:
        f = _figures(score(model, streams, threshold_int(t, smooth, scale), smooth, refractory, hop, margins))
        det.append({"threshold": float(t), "miss_rate": 1 - f["hit_rate"], "fa_per_hour": f["fa_per_hour"],
                    "hit_rate": f["hit_rate"]})
    return at, det, theta


def benchmark(model, data_dir, split="test", minutes=DEFAULT_MINUTES, seed=0, threshold=DEFAULT_THRESHOLD,
              smooth=DEFAULT_SMOOTH, refractory=DEFAULT_REFRACTORY, hop=DEFAULT_HOP, causal=True,
              progress=None, recordings=None):
    """The whole benchmark: a JSON-able result (the contract's aligned model; the causal variant too
    when `causal`)."""
    say = progress or (lambda msg: None)
    detector_config(model, threshold, smooth, refractory)         # validates the parameters
    t0 = time.perf_counter()
    if recordings is None:
        say(f"assembling {minutes:g} min of {split} recordings from {data_dir}")
        recordings = assemble(data_dir, split, minutes, seed)
    t1 = time.perf_counter()
    audio_s = sum(r.seconds for r in recordings)
    variants = {"aligned": False} | ({"causal": True} if causal else {})
    out = {}
    for name, c in variants.items():
        ta = time.perf_counter()
        streams = []
        for i, r in enumerate(recordings):
            say(f"{name}: recording {i + 1}/{len(recordings)} ({r.seconds:.0f} s)")
            streams.append(run_stream(model, r, hop, c))
        tb = time.perf_counter()
        at, det, theta = evaluate_streams(model, streams, threshold, smooth, refractory, hop)
        out[name] = {"at_default": at, "det": det, "threshold_int": theta,
                     "delay_frames": stream_layout(model.topology, c)[-1].delay,
                     "stream_seconds": round(tb - ta, 2), "realtime_factor": round(audio_s / (tb - ta), 1)}
    t2 = time.perf_counter()
    return {
        "model": model.path, "model_id": model.model_id, "data": str(data_dir), "split": split, "seed": seed,
        "minutes": round(audio_s / 60.0, 2), "recordings": [
            {"name": r.name, "seconds": round(r.seconds, 2), "keywords": len(r.keywords),
             "items": len(r.items), "bed": r.bed} for r in recordings],
        "detector": {"hop": hop, "smooth": smooth, "refractory": refractory, "threshold": threshold,
                     "keywords": [model.labels[i] for i in _cfg(model, 0, smooth, refractory).keywords]},
        "window_frames": model.features.n_frames,
        "results": out,
        "runtime_s": {"assemble": round(t1 - t0, 2), "total": round(t2 - t0, 2)},
    }


# --- report --------------------------------------------------------------------------------------------

def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def _lat(lat):
    return "-" if not lat else f"{lat['median']:.2f} s (mean {lat['mean']:.2f}, 90th percentile {lat['p90']:.2f})"


def markdown(result, command):
    a = result["results"]["aligned"]
    d = result["detector"]
    lines = [
        "# Streaming keyword spotting", "",
        f"<!-- generated by `{command}` -->",
        f"Model `{result['model']}` (id {result['model_id']}); {result['minutes']:.1f} min of continuous "
        f"recordings assembled from the speaker-held-out `{result['split']}` split of `{result['data']}` "
        f"(seed {result['seed']}; golden/stream_bench.py says how), {sum(r['keywords'] for r in result['recordings'])} "
        f"keywords. Golden streaming model (golden/SPEC.md section 6): a decision every {d['hop']} frames "
        f"({d['hop'] * 10} ms), score = sum of the last {d['smooth']} decisions' logits, margin threshold "
        f"{d['threshold']:g} logit units per decision, refractory {d['refractory']} decisions.", "",
        "| datapath | delay | hit rate | false alarms / hour | substitutions | latency after the word's end (median) | golden run time (x real time) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result["results"].items():
        f = r["at_default"]
        what = ("the contract: centred kernels, residual delayed to align" if name == "aligned"
                else "causal variant: the same weights, no residual delay (not trained for it)")
        lines.append(f"| {name} ({what}) | {r['delay_frames'] * 10} ms | {_pct(f['hit_rate'])} ({f['hits']}/{f['keywords']}) | "
                     f"{f['fa_per_hour']:.0f} ({f['false_alarms']}) | {f['substitutions']} | {_lat(f['latency_s'])} | "
                     f"{r['stream_seconds']:.1f} s ({r['realtime_factor']:.0f}x) |")
    dl = a["delay_frames"] * 10
    lines += ["",
              f"Latency is the time an event is known (the end of input frame k H + T - 1 + D of its decision k) "
              f"minus the end of the word; it includes the D = {dl} ms of right context the centred kernels need "
              f"before a frame's output is final. The causal variant runs the same checkpoint on a causal "
              f"datapath (no warm-up skip, residual not delayed): it announces nothing earlier, since every tap "
              f"still reads the same frame relative to its output and only the residual path is misaligned, so it "
              f"loses accuracy for no latency; only a network trained with causal (left-only) padding would save "
              f"up to {dl} ms. A streaming hit needs a margin held over {d['smooth']} decisions in real context "
              f"(neighbouring words 1-3 s away, a noise bed where the window model pads digital silence), so the "
              f"hit rate at a useful false-alarm rate is below the window accuracy of reports/accuracy.md.",
              "", "![DET curve](streaming.png)", "",
              "Per keyword (aligned, default threshold):", "",
              "| keyword | hit rate |", "|---|---:|"]
    for k, v in a["at_default"]["per_class_hit_rate"].items():
        lines.append(f"| {k} | {_pct(v)} |")
    lines += ["", "DET points (aligned): threshold -> miss rate, false alarms per hour:", "",
              "| threshold | miss rate | FA / hour |", "|---:|---:|---:|"]
    det = a["det"]
    for p in det[:: max(1, len(det) // 15)]:
        lines.append(f"| {p['threshold']:.2f} | {_pct(p['miss_rate'])} | {p['fa_per_hour']:.0f} |")
    lines += ["", "Recordings: " + "; ".join(f"{r['name']} {r['seconds']:.0f} s, {r['keywords']} keywords, bed {r['bed']}"
                                              for r in result["recordings"]) + ".",
              f"Run time {result['runtime_s']['total']:.0f} s in all on this machine.", ""]
    return "\n".join(lines)


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    for name, r in result["results"].items():
        pts = sorted(r["det"], key=lambda p: p["fa_per_hour"])
        fa = [max(p["fa_per_hour"], 0.1) for p in pts]
        what = ("the contract, delay D = %d ms" % (r["delay_frames"] * 10) if name == "aligned"
                else "causal variant, same weights")
        ax.plot(fa, [100 * p["miss_rate"] for p in pts], marker=".", label=f"{name} ({what})")
        f = r["at_default"]
        ax.plot([max(f["fa_per_hour"], 0.1)], [100 * (1 - f["hit_rate"])], "o", ms=9, mfc="none", color="k")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (0 drawn at 0.1)")
    ax.set_ylabel("miss rate %")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(f"streaming DET, {result['minutes']:.0f} min of {result['split']} recordings "
                 f"(circle: threshold {result['detector']['threshold']:g})", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_report(result, out_dir, command):
    import json
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "streaming.json", out / "streaming.md", out / "streaming.png"]
    files[0].write_text(json.dumps(result, indent=1) + "\n")
    files[1].write_text(markdown(result, command))
    plot(result, files[2])
    return files
