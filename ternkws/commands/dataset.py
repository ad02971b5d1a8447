"""`ternkws dataset`: synthesize the 12-class keyword dataset (see golden/DATA.md), or judge its voices."""

import json
import os

EXAMPLES = """
ternkws dataset --out data/synth2
ternkws dataset --out data/synth2-fold1 --fold 1
ternkws dataset --out data/tiny --per-class 20 --sources flite --quiet
"""


def configure(parser):
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", metavar="DIR",
                      help="output folder: DIR/<label>/*.wav and DIR/manifest.csv")
    what.add_argument("--judge", action="store_true",
                      help="score each voice's intelligibility with pocketsphinx (forced choice among "
                           "the keywords, clean clips) and print a Markdown table; needs the 'data' extra")
    parser.add_argument("--per-class", type=int, default=1667, metavar="N",
                        help="clips per class, all splits together (default 1667: about 20,000 clips)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (same seed, same bytes)")
    parser.add_argument("--fold", type=int, default=0, metavar="K",
                        help="speaker fold for cross-validation: 0 (default), 1 or 2 rotate which people "
                             "are val and test (golden/DATA.md, Splits); same seed, same label and "
                             "kind at every clip index")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                        help="worker processes (default: number of CPUs)")
    parser.add_argument("--sources", default="flite,festival,foreign,espeak", metavar="LIST",
                        help="comma-separated speech sources among flite,festival,foreign,espeak "
                             "(festival: its English voices; foreign: its Czech, Catalan, Russian, "
                             "Finnish, Italian and Hindi voices; default: all)")
    parser.add_argument("--force", action="store_true",
                        help="replace a dataset already in --out")
    parser.add_argument("--voices", default="all", metavar="LIST",
                        help="with --judge: voices to score, groups (english, foreign, espeak, all) or "
                             "names such as festival:czech_dita (default: all)")
    parser.add_argument("--words", default="keywords", choices=("keywords", "all"),
                        help="with --judge: say and choose among the 10 keywords, or all 50 words "
                             "(the unknown words too)")
    parser.add_argument("--json", action="store_true", help="with --judge: print the scores as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args):
    if args.judge:
        return _judge(args)
    from ternkws.golden.dataset import format_summary, generate

    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    summary = generate(args.out, per_class=args.per_class, seed=args.seed, jobs=args.jobs,
                       sources=sources, force=args.force, progress=not args.quiet,
                       fold=args.fold)
    print(format_summary(summary))
    print(f"wrote {summary['clips']} clips ({summary['bases']} synthesized words) to "
          f"{summary['out_dir']} in {summary['seconds']:.1f} s")
    return 0


def _judge(args):
    import sys
    import time

    from ternkws.golden import intelligibility as judge

    t0 = time.monotonic()
    voices = judge.select_voices(args.voices)
    words = judge.vocabulary_of(args.words)
    results = judge.judge_voices(voices, words=words, vocabulary=words, jobs=args.jobs,
                                 progress=not args.quiet)
    table = judge.scores(results)
    if args.json:
        print(json.dumps({"words": args.words, "voices": table, "groups": judge.group_means(table)},
                         indent=1, ensure_ascii=False))
    else:
        print(judge.format_table(table))
        print()
        print("mean per group: " + ", ".join(f"{g} {s:.2f}" for g, s in judge.group_means(table).items()))
    print(f"judged {sum(len(r) for r in results.values())} utterances of {len(voices)} voices in "
          f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0
