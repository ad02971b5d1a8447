"""`ternkws train`: train a ternary / learned-1x1 / same-budget model with PyTorch and export a checkpoint.

Needs the optional `train` extra (torch). Features are cached next to the data folder; the checkpoint
is a golden .npz (float weights + post-training-quantized int8 model) that `ternkws eval`, `infer`,
`sim` and the RTL elaboration read.
"""

import os
from pathlib import Path

from ternkws.golden.errors import UserError

MODELS = ("ternary", "learned", "budget")


def configure(parser):
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="dataset folder with train/val/test splits (ternkws dataset, or Speech Commands)")
    parser.add_argument("--out", required=True, metavar="FILE", help="checkpoint to write (.npz)")
    parser.add_argument("--model", default="ternary", metavar="NAME",
                        help="ternary (default: 3x1x64, LFSR ternary 1x1), learned (3x1x64 baseline, "
                             "learned 1x1) or budget (bigger ternary model toward the baseline's parameter count)")
    parser.add_argument("--epochs", type=int, default=40, metavar="N", help="epochs (default 40)")
    parser.add_argument("--minutes", type=float, default=None, metavar="M",
                        help="time budget: after the first epoch, cut the epoch count to fit M minutes")
    parser.add_argument("--batch", type=int, default=128, metavar="B", help="batch size (default 128)")
    parser.add_argument("--lr", type=float, default=5e-3, help="peak learning rate of AdamW (default 5e-3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="training seed (init, order, augmentation)")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    parser.add_argument("--patience", type=int, default=None, metavar="N",
                        help="early stopping: stop after N epochs without a better val accuracy")
    parser.add_argument("--teacher", default=None, metavar="FILE",
                        help="distil from this checkpoint (e.g. golden/models/baseline.npz), trained on the same data")
    parser.add_argument("--kd-alpha", type=float, default=0.5, metavar="A",
                        help="weight of the distillation loss (default 0.5)")
    parser.add_argument("--kd-temp", type=float, default=2.0, metavar="T", help="distillation temperature (default 2)")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="write training curves and the test confusion matrix (PNG) and history (JSON) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _check(args):
    if args.model not in MODELS:
        raise UserError(f"unknown --model '{args.model}'; choose one of {', '.join(MODELS)}")
    for name in ("epochs", "batch", "threads"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1, not {getattr(args, name)}")
    if args.lr <= 0:
        raise UserError(f"--lr must be positive, not {args.lr}")
    if args.minutes is not None and args.minutes <= 0:
        raise UserError(f"--minutes must be positive, not {args.minutes}")
    if args.teacher is not None and not Path(args.teacher).is_file():
        raise UserError(f"--teacher {args.teacher}: no such checkpoint file")
    if not 0 <= args.kd_alpha <= 1 or args.kd_temp <= 0:
        raise UserError("--kd-alpha must be in [0, 1] and --kd-temp positive")
    data = Path(args.data)
    if not data.is_dir():
        raise UserError(f"{data}: no such dataset directory; create one with 'ternkws dataset --out {data}'")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'model.npz'}")
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: checkpoints are .npz files; name it {out.with_suffix('.npz')}")


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
    from ternkws.golden.train.trainer import TrainConfig, preset, train

    top, description = preset(args.model)
    cfg = TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads,
                      minutes=args.minutes, patience=args.patience, teacher=args.teacher,
                      kd_alpha=args.kd_alpha, kd_temp=args.kd_temp, augment=AugmentConfig())
    train(args.data, top, cfg, args.out, plots=args.plots, name=Path(args.out).stem, description=description,
          progress=not args.quiet)
    return 0
