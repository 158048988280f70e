"""Compare two evaluation results files: per-class AP delta chart (paper Figures 7 and 8) and mAP delta.

Usage::

    python -m gluon_bof.tools.compare_results BASELINE.json BOF.json [-o delta.png] [--top 5]

``A`` is the reference ("before"), ``B`` the new result ("after"): bars show ``AP(B) - AP(A)`` in
percentage points, sorted, gains red and drops blue. Prints the mAP of both, their difference, and
the largest gains and drops. Exit status 2 on unreadable or incompatible files.
"""
import argparse
import sys
from typing import List, Optional

from gluon_bof.metrics.report import plot_ap_delta
from gluon_bof.metrics.results import load_results_json


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gluon_bof.tools.compare_results",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("before", help="results JSON of the reference model (A)")
    parser.add_argument("after", help="results JSON of the compared model (B)")
    parser.add_argument("-o", "--output", default="ap_delta.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--title", default=None, help="chart title (default: models and mAP change)")
    parser.add_argument("--top", type=int, default=5, help="gains and drops to print (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        before = load_results_json(args.before)
        after = load_results_json(args.after)
        deltas = plot_ap_delta(before, after, args.output, title=args.title)
    except (OSError, ValueError) as err:
        print("compare_results: %s" % err, file=sys.stderr)
        return 2
    print("A %-40s mAP %.2f" % (before.get("model"), 100.0 * before["map"]))
    print("B %-40s mAP %.2f" % (after.get("model"), 100.0 * after["map"]))
    print("mAP delta (B - A): %+.2f points (%s)" % (100.0 * (after["map"] - before["map"]), before["protocol"]))
    gains = [d for d in deltas if d[1] > 0]
    drops = [d for d in deltas if d[1] < 0]
    print("%d classes gain, %d drop, %d unchanged" % (len(gains), len(drops), len(deltas) - len(gains) - len(drops)))
    if args.top > 0:
        print("largest gains: " + ", ".join("%s %+.1f" % (n, 100 * d) for n, d in gains[::-1][:args.top]))
        print("largest drops: " + ", ".join("%s %+.1f" % (n, 100 * d) for n, d in drops[:args.top]))
    print("wrote %s" % args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
