"""`ternkws train`: train a ternary / learned-1x1 / bigger ternary (budget) model with PyTorch and export a checkpoint.

Needs the optional `train` extra (torch). Features are cached in the cache folder ($TERNKWS_CACHE_DIR,
default ~/.cache/ternkws; golden/train/features.py); the checkpoint is a golden .npz (float weights + post-training-quantized int8 model) that `ternkws eval`, `infer`,
`sim` and the RTL elaboration read.
"""

import argparse
import dataclasses
import os
from pathlib import Path

from ternkws.golden.errors import UserError

from ._common import choices_metavar, model_kinds, writable_file

ARCHS = ("ternary", "learned", "budget")

EXAMPLES = """
ternkws train --data data/synth --out build/models/mine.npz
ternkws train --data data/synth --arch learned --out build/models/baseline.npz --epochs 20
ternkws train --data data/synth --out golden/models/default.npz --overwrite --teacher baseline
"""


def configure(parser):
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="dataset folder with train/val/test splits (ternkws dataset, or Speech Commands)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="checkpoint to write (.npz); an existing file is refused without --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
    parser.add_argument("--arch", default="ternary", metavar=choices_metavar(ARCHS),
                        help="architecture: ternary (default: 3x1x64, LFSR ternary 1x1), learned (3x1x64 "
                             "baseline, learned 1x1) or budget (bigger ternary model toward the baseline's "
                             "parameter count)")
    # `--model` names a checkpoint in every command; here it used to be the architecture: say so.
    parser.add_argument("--model", dest="old_model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pattern", default=None, metavar="{iid,grouped}",
                        help="ternary pattern of the 1x1s (golden/SPEC.md section 1): iid (independent entries) "
                             "or grouped (one nonzero per group of 1/density inputs; the presets' default)")
    parser.add_argument("--density", default=None, metavar="D",
                        help="fraction of nonzero entries in the ternary 1x1s, e.g. 1/2 or 0.25 (default: the "
                             "preset's 1/3); grouped: 1/M, one nonzero per M inputs; the mixer spends one add "
                             "per nonzero, so cycles grow with D")
    parser.add_argument("--topology", default=None, metavar="BxRxC",
                        help="another size of the --arch family: B blocks of R sub-blocks of C channels (e.g. "
                             "3x1x32, 3x2x128); prologue, epilogue and final 1x1 get --outer-channels")
    parser.add_argument("--outer-channels", type=int, default=None, metavar="N",
                        help="with --topology: channels of the prologue, epilogue and final layer (default 2C)")
    parser.add_argument("--final-channels", type=int, default=None, metavar="N",
                        help="width of the final 1x1 (the pooled features the classifier reads); default: the "
                             "preset's or --outer-channels")
    parser.add_argument("--epochs", type=int, default=40, metavar="N", help="epochs (default 40)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run that writes --out (its state, saved after every "
                             "epoch as FILE.state.pt); the same weights as an uninterrupted run")
    parser.add_argument("--label-smoothing", type=float, default=0.0, metavar="E",
                        help="label smoothing of the cross-entropy (default 0)")
    parser.add_argument("--augment", default="full", metavar="{full,light,off}",
                        help="training augmentation (golden/train/augment.py): full (default: NeMo's SpecAugment, "
                             "shift, noise, speaker warp/EQ), light (one narrow mask per axis, no cutouts) or off")
    parser.add_argument("--minutes", type=float, default=None, metavar="M",
                        help="time budget: after the first epoch, cut the epoch count to fit M minutes")
    parser.add_argument("--batch", type=int, default=128, metavar="B", help="batch size (default 128)")
    parser.add_argument("--lr", type=float, default=5e-3, help="peak learning rate of AdamW (default 5e-3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="training seed (init, order, augmentation)")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    parser.add_argument("--patience", type=int, default=None, metavar="N",
                        help="early stopping: stop after N epochs without a better val accuracy")
    parser.add_argument("--teacher", default=None, metavar="M",
                        help=f"distil from this checkpoint, trained on the same data: {model_kinds()}, "
                             "e.g. baseline")
    parser.add_argument("--kd-alpha", type=float, default=0.5, metavar="A",
                        help="weight of the distillation loss (default 0.5)")
    parser.add_argument("--kd-temp", type=float, default=2.0, metavar="T", help="distillation temperature (default 2)")
    parser.add_argument("--ema", type=float, default=None, metavar="D",
                        help="validate and keep an exponential moving average of the weights, decay D per step "
                             "(e.g. 0.998: about 4 epochs of the default data); default: the weights themselves")
    parser.add_argument("--aux-subclasses", type=float, default=0.0, metavar="W",
                        help="train with an auxiliary head that tells apart the words and sounds inside unknown "
                             "and silence, its loss weighted W (e.g. 0.5; default 0: none); the model keeps its "
                             "12 outputs")
    parser.add_argument("--unknown-weight", type=float, default=1.0, metavar="W",
                        help="weight of the unknown class's clips in the loss (cross-entropy and distillation "
                             "alike), the other classes' 1 (default 1: unweighted)")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="write training curves and the test confusion matrix (PNG) and history (JSON) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def parse_density(text):
    """`--density` as a float in (0, 1]: a decimal (0.25) or a fraction (1/4); UserError otherwise."""
    num, slash, den = str(text).partition("/")
    try:
        value = float(num) / float(den) if slash else float(num)
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None or not 0 < value <= 1:
        raise UserError(f"--density must be a fraction of nonzero entries in (0, 1], e.g. 1/2 or 0.25, not '{text}'")
    return value


def check_grouped_density(density, pattern):
    """The grouped pattern holds one nonzero per group of M inputs: its density is 1/M, M in [1, 128]."""
    from ternkws.golden.ternary_generator import GROUP_MAX
    from ternkws.golden.topology import one_in
    m = one_in(density)
    if pattern != "grouped" or (m is not None and m <= GROUP_MAX):
        return
    lo = min(GROUP_MAX, int(1 / density))
    near = sorted({max(1, lo), min(GROUP_MAX, lo + 1)})
    raise UserError(f"--density {density:g}: the grouped pattern's density is 1/M (one nonzero per M inputs, "
                    f"M in [1, {GROUP_MAX}]); use " + " or ".join(f"1/{k}" for k in near) + " (or --pattern iid)")


def _check(args):
    from ternkws.golden.checkpoint import resolve

    if getattr(args, "old_model", None) is not None:
        raise UserError(f"train takes the architecture as --arch ({', '.join(ARCHS)}); --model names a "
                        f"checkpoint in the other commands, and --out is the one train writes")
    if args.arch not in ARCHS:
        raise UserError(f"unknown --arch '{args.arch}'; choose one of {', '.join(ARCHS)}")
    if args.pattern is not None:
        from ternkws.golden.ternary_generator import PATTERNS
        if args.pattern not in PATTERNS:
            raise UserError(f"unknown --pattern '{args.pattern}'; choose one of {', '.join(PATTERNS)}")
        if args.arch == "learned":
            raise UserError("--pattern sets the ternary matrices; the learned baseline has none")
    if args.density is not None:
        if args.arch == "learned":
            raise UserError("--density sets the ternary matrices; the learned baseline has none")
        args.density = parse_density(args.density)
    for name in ("epochs", "batch", "threads"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1, not {getattr(args, name)}")
    if args.topology is not None:
        from ternkws.golden.topology import Topology
        Topology.from_name(args.topology)            # the name's form, in words
    elif args.outer_channels is not None:
        raise UserError("--outer-channels goes with --topology")
    if args.outer_channels is not None and args.outer_channels < 1:
        raise UserError(f"--outer-channels must be at least 1, not {args.outer_channels}")
    if args.final_channels is not None:
        from ternkws.golden.contract import CHANNELS_MAX
        if not 1 <= args.final_channels <= CHANNELS_MAX:
            raise UserError(f"--final-channels must be in [1, {CHANNELS_MAX}], not {args.final_channels}")
    if not 0 <= args.label_smoothing < 1:
        raise UserError(f"--label-smoothing must be in [0, 1), not {args.label_smoothing}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, not {args.lr}")
    if args.minutes is not None and args.minutes <= 0:
        raise UserError(f"--minutes must be positive, not {args.minutes}")
    if args.teacher is not None:
        try:
            args.teacher = str(resolve(args.teacher))
        except UserError as e:
            raise UserError(f"--teacher: {e}") from None
    if args.ema is not None and not 0 < args.ema < 1:
        raise UserError(f"--ema must be in (0, 1), e.g. 0.998, not {args.ema}")
    if not 0 <= args.aux_subclasses <= 10:
        raise UserError(f"--aux-subclasses must be in [0, 10], e.g. 0.5, not {args.aux_subclasses}")
    if not 0 < args.unknown_weight <= 10:
        raise UserError(f"--unknown-weight must be in (0, 10], e.g. 2, not {args.unknown_weight}")
    if not 0 <= args.kd_alpha <= 1 or args.kd_temp <= 0:
        raise UserError("--kd-alpha must be in [0, 1] and --kd-temp positive")
    data = Path(args.data)
    if not data.is_dir():
        raise UserError(f"{data}: no such dataset directory; create one with 'ternkws dataset --out {data}'")
    out = writable_file(args.out, "--out", "model.npz")
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: checkpoints are .npz files; name it {out.with_suffix('.npz')}")
    if args.resume and not (out.with_name(out.name + ".state.pt")).is_file():
        raise UserError(f"--resume: no interrupted run of {out} to continue ({out}.state.pt is missing); "
                        f"train without --resume")
    if out.exists() and not args.overwrite:
        raise UserError(f"--out {out} exists; pass --overwrite to replace it (make train: OVERWRITE=1), "
                        f"or choose another file")


def run(args):
    _check(args)
    # Passive OpenMP waiting: with busy-waiting threads, a shared 2-core machine runs torch ~10x slower.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("training needs PyTorch: pip install -e '.[train]' (CPU wheel: add "
                        "--extra-index-url https://download.pytorch.org/whl/cpu)") from None
    from ternkws.golden.train.augment import AugmentConfig
    augment = AugmentConfig.named(args.augment)      # an unknown name: refused in one sentence
    from ternkws.golden.train.trainer import TrainConfig, preset, train

    top, description = preset(args.arch)
    if args.topology is not None:
        from ternkws.golden.topology import Topology
        c = Topology.from_name(args.topology).blocks[0].channels
        outer = args.outer_channels or 2 * c
        sized = Topology.from_name(args.topology, prologue_channels=outer, epilogue_channels=outer,
                                   final_channels=outer)
        top = dataclasses.replace(top, blocks=sized.blocks, prologue_channels=outer, epilogue_channels=outer,
                                  final_channels=outer)
        description = f"{args.topology} (outer {outer}) of the {args.arch} family: " + description
    if args.final_channels is not None and args.final_channels != top.final_channels:
        top = dataclasses.replace(top, final_channels=args.final_channels)
        description += f", final 1x1 {top.epilogue_channels} -> {top.final_channels}"
    if args.pattern is not None and args.pattern != top.pattern:
        top = dataclasses.replace(top, pattern=args.pattern)
        description += f", {args.pattern} pattern"
    if args.density is not None and args.density != top.density:
        from ternkws.golden.topology import density_name
        check_grouped_density(args.density, top.pattern)
        top = dataclasses.replace(top, density=args.density)
        description += f", density {density_name(args.density)}"
    cfg = TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads,
                      minutes=args.minutes, patience=args.patience, teacher=args.teacher,
                      label_smoothing=args.label_smoothing,
                      kd_alpha=args.kd_alpha, kd_temp=args.kd_temp, ema=args.ema,
                      aux_weight=args.aux_subclasses, unknown_weight=args.unknown_weight,
                      augment=augment)
    train(args.data, top, cfg, args.out, plots=args.plots, name=Path(args.out).stem, description=description,
          progress=not args.quiet, resume=args.resume)
    return 0
