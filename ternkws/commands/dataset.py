"""`ternkws dataset`: synthesize the 12-class keyword dataset (see golden/DATA.md)."""

import os

EXAMPLES = """
ternkws dataset --out data/synth
ternkws dataset --out data/tiny --per-class 20 --sources flite --quiet
"""


def configure(parser):
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: DIR/<label>/*.wav and DIR/manifest.csv")
    parser.add_argument("--per-class", type=int, default=1667, metavar="N",
                        help="clips per class, all splits together (default 1667: about 20,000 clips)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (same seed, same bytes)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                        help="worker processes (default: number of CPUs)")
    parser.add_argument("--sources", default="flite,festival,espeak", metavar="LIST",
                        help="comma-separated speech sources among flite,festival,espeak "
                             "(default: all)")
    parser.add_argument("--force", action="store_true",
                        help="replace a dataset already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args):
    from ternkws.golden.dataset import format_summary, generate

    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    summary = generate(args.out, per_class=args.per_class, seed=args.seed, jobs=args.jobs,
                       sources=sources, force=args.force, progress=not args.quiet)
    print(format_summary(summary))
    print(f"wrote {summary['clips']} clips ({summary['bases']} synthesized words) to "
          f"{summary['out_dir']} in {summary['seconds']:.1f} s")
    return 0
