"""Training: cached MFCCs -> KWSNet (PyTorch) -> best-on-val float weights -> PTQ -> .npz checkpoint.

Recipe (after NeMo's MatchboxNet 3x1x64 v1, adapted to a CPU budget): feature statistics from the train
split; SpecAugment + time shift + feature noise (golden/train/augment.py); AdamW (weight decay on conv
and classifier weights, none on BN and biases), linear warmup then cosine decay per step; the model of
the epoch with the best val accuracy is kept (optional early stopping); optional knowledge distillation
from a checkpoint (--teacher, e.g. the learned baseline); optionally (--ema) an exponential moving average
of the weights is what is validated and kept. Export: golden.checkpoint.
make_model runs the golden post-training quantization on a calibration subset of the train features;
the int8 model is then measured with golden.network.forward_int on the test split.
"""

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ternkws.golden import checkpoint
from ternkws.golden.data import list_examples, summarize
from ternkws.golden.evaluate import evaluate_features
from ternkws.golden.features import FeatureConfig, feature_stats, normalize
from ternkws.golden.labels import LABELS
from ternkws.golden.topology import Topology, count_parameters, count_ternary_entries
from ternkws.golden.errors import UserError

from .augment import AugmentConfig, Augmenter
from .features import load_features
from .model import KWSNet, count_trainable, to_golden_arrays
from .report import stored_weight_bytes

# The bigger ternary model, toward the baseline's parameter budget (27% of it): see PRESETS["budget"], reports/accuracy.md.
BUDGET_TOPOLOGY = Topology.from_name("3x2x128", prologue_channels=128, epilogue_channels=128, final_channels=128,
                                     pattern="grouped")

PRESETS = {
    "ternary": (Topology(pattern="grouped"),
                "3x1x64 MatchboxNet, LFSR sparse ternary 1x1 (seed 1, density 1/3, grouped pattern)"),
    "learned": (Topology(mixer="learned"), "3x1x64 MatchboxNet baseline, learned 1x1"),
    "budget": (BUDGET_TOPOLOGY, "deeper/wider ternary model toward the learned baseline's parameter budget"),
}


def preset(name):
    if name not in PRESETS:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass
class TrainConfig:
    epochs: int = 40
    batch: int = 128
    lr: float = 5e-3
    weight_decay: float = 1e-3
    warmup: float = 0.05          # fraction of all steps
    min_lr: float = 1e-5
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 2
    minutes: float | None = None  # time budget: after epoch 1 the epoch count is cut to fit it
    patience: int | None = None   # early stopping: epochs without a better val accuracy
    calib: int = 256              # calibration clips for PTQ (from train)
    eval_jobs: int = 2
    max_steps: int | None = None  # stop after this many optimizer steps (tests)
    teacher: str | None = None    # knowledge distillation from this checkpoint (e.g. the learned baseline)
    kd_alpha: float = 0.5         # weight of the distillation term
    kd_temp: float = 2.0          # softmax temperature of the distillation term
    ema: float | None = None      # validate and keep an exponential moving average of the weights (decay per step)
    aux_weight: float = 0.0       # weight of the auxiliary sub-class head's loss (0: no head); see fit()
    unknown_weight: float = 1.0   # loss weight of the unknown class's clips (the others 1); see fit()
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class Splits:
    """Normalized float features and labels of train / val / test, with the feature map."""
    x: dict
    y: dict
    raw: dict
    mean: np.ndarray
    scale: np.ndarray
    counts: dict
    subclasses: dict = field(default_factory=dict)   # split -> Example.subclass of every clip


def subclass_targets(names):
    """(class names in a fixed order, index of every clip) of a split's Example.subclass list."""
    order = sorted(set(names))
    pos = {n: i for i, n in enumerate(order)}
    return order, np.array([pos[n] for n in names], np.int64)


def load_splits(data_dir, cfg=FeatureConfig(), progress=True, jobs=None):
    data_dir = Path(data_dir)
    x, y, raw, counts, subs = {}, {}, {}, {}, {}
    for split in ("train", "val", "test"):
        try:
            examples = list_examples(data_dir, split)
        except UserError as e:
            raise UserError(f"training needs train, val and test splits: {e}") from None
        fs = load_features(data_dir, examples, cfg, jobs=jobs, progress=progress)
        raw[split], y[split] = fs.mfcc, fs.labels
        counts[split] = summarize(examples)
        subs[split] = [e.subclass for e in examples]
    mean, scale = feature_stats(raw["train"])
    for split in raw:
        x[split] = normalize(raw[split], mean, scale)
    return Splits(x, y, raw, mean, scale, counts, subs)


def _param_groups(module, weight_decay):
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class WeightAverage:
    """Exponential moving average of a module's state (weights and BN statistics), updated after every
    optimizer step: avg <- d avg + (1 - d) w, with d = min(decay, (1 + n) / (10 + n)) after n updates (so
    the average does not drag the initial weights along). Integer buffers are copied."""

    def __init__(self, module, decay):
        self.decay = decay
        self.n = 0
        self.module = copy.deepcopy(module)
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module):
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        src = module.state_dict()
        for k, v in self.module.state_dict().items():
            if v.is_floating_point():
                v.lerp_(src[k], 1 - d)
            else:
                v.copy_(src[k])
        self.n += 1

    def state_dict(self):
        return {"n": self.n, "module": self.module.state_dict()}

    def load_state_dict(self, st):
        self.n = st["n"]
        self.module.load_state_dict(st["module"])


@torch.no_grad()
def predict(module, x, batch=512):
    """(logits, mean CE loss) of float features x (N, T, F) numpy/tensor in eval mode."""
    module.eval()
    out = [module(torch.as_tensor(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros(0, module.top.n_classes)


# TrainConfig fields that a resumed run may change (how it runs, not what it computes).
NOT_IDENTITY = {"threads", "eval_jobs", "minutes", "patience", "augment"}


def _with_new_defaults(identity):
    """A saved run identity with the recipe options added since it was saved at their defaults (the value
    such a run had), so that a run interrupted before an option existed still resumes."""
    if not isinstance(identity, dict) or not isinstance(identity.get("recipe"), dict):
        return identity
    defaults = {k: v for k, v in asdict(TrainConfig()).items() if k not in NOT_IDENTITY}
    return {**identity, "recipe": {**{k: v for k, v in defaults.items() if k not in identity["recipe"]},
                                   **identity["recipe"]}}


def fit(module, xtr, ytr, xval, yval, cfg: TrainConfig, progress=True, log=print, feature_map=None,
        teacher=None, state_file=None, resume=False, identity=None, ysub=None):
    """Train `module` in place; returns (history per epoch, per-step losses, best epoch).

    feature_map: (mean, scale) of the normalized features, needed by the warp augmentation.
    teacher: a KWSNet in eval mode whose softened outputs on the same augmented batch are distilled
    (Hinton et al. 2015): loss = (1 - a) CE + a T^2 KL(teacher_T || student_T).
    ysub: with cfg.aux_weight > 0, each train clip's sub-class index (subclass_targets: the unknown words
    one by one, the non-speech sounds by kind): a second linear head on the pooled features learns them,
    adding aux_weight * CE(aux head, ysub) to the loss, so that the features tell apart what the single
    `unknown` and `silence` outputs lump together (the ternary models fit half of the train unknowns
    without it). The head is training-only: not validated, not exported.
    state_file: after every epoch the whole training state (weights, optimizer, schedule, every random
    generator, history, best weights) is written there; with `resume` a run continues from it and
    gives the same weights as an uninterrupted run. `identity`: what must match to resume (topology,
    recipe, data), refused in one sentence otherwise."""
    torch.manual_seed(cfg.seed)
    mean, scale = feature_map if feature_map is not None else (np.zeros(xtr.shape[2]), np.ones(xtr.shape[2]))
    augmenter = Augmenter(cfg.augment, mean, scale)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    xtr_t = torch.as_tensor(xtr)
    ytr_t = torch.as_tensor(ytr)
    yval_t = torch.as_tensor(yval)
    aux = None
    if cfg.aux_weight:
        if ysub is None:
            raise ValueError("aux_weight needs the sub-class targets (ysub)")
        ysub_t = torch.as_tensor(ysub)
        aux = torch.nn.Linear(module.top.final_channels, int(ysub_t.max()) + 1)
    unknown = LABELS.index("unknown")
    steps_per_epoch = max(1, math.ceil(len(xtr) / cfg.batch))
    sched = {"total": cfg.epochs * steps_per_epoch}
    if cfg.max_steps:
        sched["total"] = min(sched["total"], cfg.max_steps)
    trained = torch.nn.ModuleDict({"net": module} | ({"aux": aux} if aux is not None else {}))
    opt = torch.optim.AdamW(_param_groups(trained, cfg.weight_decay), lr=cfg.lr)

    def lr_at(step):
        total = sched["total"]
        warm = max(1, int(cfg.warmup * total))
        if step < warm:
            return (step + 1) / warm
        p = min(1.0, (step - warm) / max(1, total - warm))
        floor = cfg.min_lr / cfg.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))

    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    average = WeightAverage(module, cfg.ema) if cfg.ema else None
    kept = average.module if average is not None else module    # what is validated and kept
    history, step_losses = [], []
    best = (-1.0, float("inf"))
    best_state, best_epoch = None, 0
    epochs = cfg.epochs
    t_start = time.time()
    step = 0
    epoch = 0
    elapsed_before = 0.0
    if resume and state_file is not None and Path(state_file).is_file():
        st = torch.load(state_file, weights_only=False)
        saved = _with_new_defaults(st["identity"])
        if saved != identity:
            diff = sorted(k for k in set(saved) | set(identity or {}) if saved.get(k) != (identity or {}).get(k))
            raise UserError(f"--resume: {state_file} is a run of another configuration (differs in "
                            f"{', '.join(diff)}); delete it or train without --resume")
        module.load_state_dict(st["module"])
        if aux is not None:
            aux.load_state_dict(st["aux"])
        opt.load_state_dict(st["opt"])
        sched["total"] = st["sched_total"]
        scheduler.load_state_dict(st["scheduler"])
        rng.bit_generator.state = st["rng"]
        gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        if average is not None:
            average.load_state_dict(st["average"])
        history, step_losses, best, best_state = st["history"], st["step_losses"], st["best"], st["best_state"]
        best_epoch, epoch, epochs, step = st["best_epoch"], st["epoch"], st["epochs"], st["step"]
        elapsed_before = st["elapsed"]
        t_start -= elapsed_before
        log(f"resumed from {state_file}: epoch {epoch}/{epochs} done, best val "
            f"{100 * best[0]:.2f}% (epoch {best_epoch}), {elapsed_before / 60:.1f} min trained before")
    while epoch < epochs:
        epoch += 1
        t0 = time.time()
        module.train()
        order = rng.permutation(len(xtr))
        tot_loss = tot_ok = seen = 0
        bar = range(steps_per_epoch)
        if progress:
            from tqdm import tqdm
            bar = tqdm(bar, desc=f"epoch {epoch}/{epochs}", unit="batch", dynamic_ncols=True, leave=False)
        for b in bar:
            idx = torch.as_tensor(order[b * cfg.batch:(b + 1) * cfg.batch])
            xb = augmenter(xtr_t[idx], gen)
            yb = ytr_t[idx]
            if aux is None:
                logits = module(xb)
            else:
                pooled = module.features(xb).mean(dim=1)
                logits = module.classifier(pooled)
            loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing, reduction="none")
            if teacher is not None:
                with torch.no_grad():
                    soft = F.softmax(teacher(xb) / cfg.kd_temp, dim=1)
                kd = F.kl_div(F.log_softmax(logits / cfg.kd_temp, dim=1), soft, reduction="none").sum(dim=1)
                loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * cfg.kd_temp ** 2 * kd
            # a weighted mean (as cross_entropy's `weight`): unknown clips count unknown_weight times
            w = torch.where(yb == unknown, cfg.unknown_weight, 1.0)
            loss = (w * loss).sum() / w.sum()
            if aux is not None:
                loss = loss + cfg.aux_weight * F.cross_entropy(aux(pooled), ysub_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            scheduler.step()
            if average is not None:
                average.update(module)
            step += 1
            step_losses.append(loss.item())
            tot_loss += loss.item() * len(idx)
            tot_ok += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if progress and b % 10 == 0:
                bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{100 * tot_ok / seen:.1f}")
            if cfg.max_steps and step >= cfg.max_steps:
                break
        if progress:
            bar.close()
        vlog = predict(kept, xval)
        vloss = float(F.cross_entropy(vlog, yval_t)) if len(yval) else float("nan")
        vacc = float((vlog.argmax(1) == yval_t).float().mean()) if len(yval) else 0.0
        dt = time.time() - t0
        history.append({"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": tot_loss / max(seen, 1),
                        "train_acc": tot_ok / max(seen, 1), "val_loss": vloss, "val_acc": vacc, "seconds": dt})
        improved = (vacc, -vloss) > (best[0], -best[1])
        if improved:
            best = (vacc, vloss)
            best_state = copy.deepcopy(kept.state_dict())
            best_epoch = epoch
        log(f"epoch {epoch:3d}/{epochs}  loss {tot_loss / max(seen, 1):.4f}  train {100 * tot_ok / max(seen, 1):6.2f}%  "
            f"val loss {vloss:.4f}  val {100 * vacc:6.2f}%{'  *' if improved else ''}  "
            f"lr {opt.param_groups[0]['lr']:.2e}  {dt:.0f} s")
        if epoch == 1 and cfg.minutes and not cfg.max_steps:
            fit_epochs = max(1, int(cfg.minutes * 60 / dt))
            if fit_epochs < epochs:
                log(f"time budget {cfg.minutes:g} min at {dt:.0f} s/epoch: {fit_epochs} epochs instead of {epochs}")
                epochs = fit_epochs
                sched["total"] = epochs * steps_per_epoch
        if state_file is not None:
            tmp = Path(str(state_file) + ".tmp")
            torch.save({"identity": identity, "module": module.state_dict(), "opt": opt.state_dict(),
                        "aux": aux.state_dict() if aux is not None else None,
                        "scheduler": scheduler.state_dict(), "sched_total": sched["total"],
                        "rng": rng.bit_generator.state, "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                        "history": history, "step_losses": step_losses, "best": best, "best_state": best_state,
                        "best_epoch": best_epoch, "epoch": epoch, "epochs": epochs, "step": step,
                        "average": average.state_dict() if average is not None else None,
                        "elapsed": time.time() - t_start}, tmp)
            tmp.replace(state_file)     # a run killed mid-write keeps the previous epoch's state
        if cfg.max_steps and step >= cfg.max_steps:
            break
        if cfg.patience and epoch - best_epoch >= cfg.patience:
            log(f"early stop: no better val accuracy for {cfg.patience} epochs")
            break
        if cfg.minutes and time.time() - t_start > 1.25 * cfg.minutes * 60:
            log("time budget exceeded by 25%: stopping")
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return history, step_losses, best_epoch


def load_teacher(path, splits, log=print):
    """A golden checkpoint as a frozen KWSNet for distillation; its feature map must be the student's."""
    from .model import load_golden_arrays
    t = checkpoint.load(path)
    if not (np.allclose(t.feature_mean, splits.mean, atol=1e-4) and np.allclose(t.feature_scale, splits.scale, rtol=1e-4)):
        raise UserError(f"teacher {path}: its feature normalization differs from this dataset's train split; "
                        f"use a teacher trained on the same data")
    module = load_golden_arrays(KWSNet(t.topology), t.float_arrays).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    log(f"distilling from {path} ({t.topology.name} {t.topology.mixer}, "
        f"float test {t.meta.get('float_test_accuracy', float('nan')):.4f})")
    return module


def export(module, calib_x, mean, scale, meta, out=None):
    """Float weights of `module` -> golden Model (PTQ on calib_x) [-> saved .npz]."""
    module.eval()
    arrays = to_golden_arrays(module)
    model = checkpoint.make_model(module.top, arrays, calib_x, mean, scale, meta)
    if out is not None:
        checkpoint.save(model, out)
    return model


def state_path(out):
    """Where a run that writes `out` keeps its per-epoch training state (train --resume)."""
    return Path(str(out) + ".state.pt")


def train(data_dir, top: Topology, cfg: TrainConfig, out, plots=None, name=None, description="",
          progress=True, log=print, resume=False):
    """Train, export and evaluate one model. Returns a summary dict (also stored in the checkpoint meta).

    The training state is written after every epoch to state_path(out) and removed once the checkpoint is
    written; `resume` continues an interrupted run from it (same topology, recipe and data)."""
    torch.set_num_threads(cfg.threads)
    data_dir = Path(data_dir)
    name = name or Path(out).stem
    t0 = time.time()
    splits = load_splits(data_dir, progress=progress, jobs=cfg.eval_jobs)
    t_feat = time.time() - t0
    n = {s: len(splits.y[s]) for s in splits.y}
    log(f"data {data_dir}: train {n['train']}, val {n['val']}, test {n['test']} clips "
        f"(features {t_feat:.0f} s)")
    torch.manual_seed(cfg.seed)
    module = KWSNet(top)
    n_params = count_trainable(module)
    assert n_params == count_parameters(top)
    log(f"model {name}: {top.name} mixer={top.mixer}, {n_params} trained parameters, "
        f"{count_ternary_entries(top)} 1x1 entries")
    teacher = load_teacher(cfg.teacher, splits, log) if cfg.teacher else None
    sub_names, ysub = subclass_targets(splits.subclasses["train"]) if cfg.aux_weight else ([], None)
    if cfg.aux_weight:
        if len(sub_names) <= len(set(splits.y["train"].tolist())):
            raise UserError(f"--aux-subclasses: {data_dir} does not say what its unknown and silence clips "
                            f"hold (no manifest word/voice columns, not a Speech Commands tree), so there "
                            f"are no sub-classes to learn; train without it")
        log(f"auxiliary head: {len(sub_names)} sub-classes (weight {cfg.aux_weight:g})")
    identity = {"topology": top.to_dict(), "data": str(data_dir), "counts": n,
                "recipe": {k: v for k, v in asdict(cfg).items() if k not in NOT_IDENTITY}, "augment": asdict(cfg.augment)}
    sfile = state_path(out)
    if not resume and sfile.is_file():
        log(f"{sfile} holds an earlier, interrupted run of this output: starting over "
            f"(train --resume continues it)")
    history, step_losses, best_epoch = fit(module, splits.x["train"], splits.y["train"], splits.x["val"],
                                           splits.y["val"], cfg, progress=progress, log=log,
                                           feature_map=(splits.mean, splits.scale), teacher=teacher,
                                           state_file=sfile, resume=resume, identity=identity,
                                           ysub=ysub)
    t_train = sum(h["seconds"] for h in history)      # epochs' wall time, over every resumed part
    rng = np.random.default_rng(cfg.seed + 1)
    calib_idx = np.sort(rng.choice(n["train"], size=min(cfg.calib, n["train"]), replace=False))
    meta = {
        "trained": True,
        "name": name,
        "description": description or PRESETS.get(name, (None, ""))[1],
        "dataset": str(data_dir),
        "dataset_counts": {s: n[s] for s in n},
        "epochs": len(history),
        "best_epoch": best_epoch,
        "float_val_accuracy": history[best_epoch - 1]["val_acc"] if best_epoch else None,
        "trained_parameters": n_params,
        "train_seconds": round(t_train, 1),
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "augment"},
        "teacher": Path(cfg.teacher).name if cfg.teacher else None,
        "aux_subclasses": len(sub_names) if cfg.aux_weight else None,
        "augment": asdict(cfg.augment),
        "calibration": f"{len(calib_idx)} random train clips, golden PTQ (percentile "
                       f"{_calib_percentile()})",
        "torch": torch.__version__,
    }
    model = export(module, splits.x["train"][calib_idx], splits.mean, splits.scale, meta)
    log(f"evaluating float and int8 on {n['test']} test clips")
    result = evaluate_features(model, splits.raw["test"], splits.y["test"], jobs=cfg.eval_jobs, progress=progress)
    meta.update({
        "float_test_accuracy": result["accuracy_float"],
        "int8_test_accuracy": result["accuracy_int8"],
        "int8_float_agreement": result["int8_float_agreement"],
        "stored_bytes": stored_weight_bytes(model),
        "ternary_entries": count_ternary_entries(top) if top.mixer == "ternary" else 0,
    })
    model.meta = meta
    checkpoint.save(model, out)
    sfile.unlink(missing_ok=True)
    log(f"{name}: float test {100 * result['accuracy_float']:.2f}%  int8 test {100 * result['accuracy_int8']:.2f}%  "
        f"(val {100 * meta['float_val_accuracy']:.2f}%) -> {out}")
    summary = {"name": name, "out": str(out), "meta": meta, "history": history, "test": result,
               "step_losses": step_losses}
    if plots:
        from .plots import plot_confusion, plot_history
        plots = Path(plots)
        plot_history(history, plots / f"curves-{name}.png",
                     f"{name}: {top.name} {top.mixer}, {n_params} params; best val {100 * meta['float_val_accuracy']:.2f}%")
        plot_confusion(result["confusion_int8"], model.labels, plots / f"confusion-{name}.png",
                       f"{name} int8 (forward_int), test: {100 * result['accuracy_int8']:.2f}%")
        with open(plots / f"history-{name}.json", "w") as f:
            json.dump({"meta": meta, "history": history}, f, indent=1)
    return summary


def _calib_percentile():
    from ternkws.golden.network import CALIB_PERCENTILE
    return CALIB_PERCENTILE
