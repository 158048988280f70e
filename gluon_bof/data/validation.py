"""The bad-input policy of the datasets, and a log that counts problems instead of stopping at the first.

Every way a dataset can be wrong has a *rule* (a short code) with one fixed *action*:

``note``
    harmless or fixed transparently (missing ``<difficult>`` means 0, grayscale converted to RGB);
    counted and reported by the validator, never warned about.
``fix``
    the data is changed to something usable (box clipped to the image); one counted warning per rule.
``drop``
    the object or image is left out; one counted warning per rule.
``error``
    the dataset cannot be used as it is; a :class:`DatasetError` names the file, the object and the rule.

The table :data:`RULES` is the single source of that policy; ``docs/datasets.md`` mirrors it. Datasets
record what they meet while parsing annotations into a :class:`ProblemLog`, then
:meth:`ProblemLog.finish` warns once per ``fix``/``drop`` rule and raises one error listing *all*
``error`` problems (or keeps them, for ``python -m gluon_bof.tools.validate_dataset``).
"""
import collections
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

NOTE, FIX, DROP, ERROR = "note", "fix", "drop", "error"

#: rule code -> (action, what the rule says). Order is the order of reports.
RULES: Dict[str, Tuple[str, str]] = {
    # split lists and annotation files
    "split_missing": (ERROR, "the split's image list file does not exist"),
    "split_empty": (ERROR, "the split's image list file lists no image"),
    "annotation_missing": (ERROR, "the annotation file does not exist"),
    "annotation_malformed": (ERROR, "the annotation cannot be parsed (bad XML/JSON, missing name or "
                                    "bndbox, non-numeric coordinate)"),
    "category_unknown": (ERROR, "an annotation's category_id is not among the JSON's categories"),
    "classes_mismatch": (ERROR, "the requested class list differs from the annotation file's categories"),
    # image size
    "size_missing": (NOTE, "<size>/width/height missing or not positive: taken from the image file header"),
    "size_mismatch": (ERROR, "the annotated image size differs from the image file's size"),
    "exif_ignored": (FIX, "the annotated size matches the image *without* its EXIF rotation: the "
                          "rotation is not applied, so boxes stay aligned"),
    # objects
    "unknown_class": (DROP, "object class is not in `classes`: object skipped"),
    "difficult_missing": (NOTE, "<difficult> missing or empty: means 0"),
    "difficult_invalid": (NOTE, "<difficult> is not an integer: means 0"),
    "box_clipped": (FIX, "box coordinates outside the image: clipped to [0, W-1] x [0, H-1]"),
    "box_degenerate": (DROP, "xmin >= xmax or ymin >= ymax (after clipping, also when the box lies "
                             "wholly outside the image): object dropped"),
    "crowd_skipped": (NOTE, "crowd box left out (use_crowd=False)"),
    "ignore_flag": (NOTE, "annotation with ignore=1 left out"),
    "small_area": (NOTE, "object area below min_object_area: left out"),
    "empty_image": (NOTE, "image without objects: label of shape (0, 6)"),
    "empty_image_skipped": (NOTE, "image without usable objects left out (skip_empty=True)"),
    # image files
    "image_missing": (ERROR, "the image file does not exist"),
    "image_ambiguous": (ERROR, "several image files share the id (a.jpg and a.png): give the extension"),
    "image_unreadable": (ERROR, "the image file cannot be decoded (not an image, or corrupt)"),
    "image_truncated": (ERROR, "the image file is truncated"),
    "image_grayscale": (NOTE, "grayscale image: converted to RGB"),
    "image_alpha": (NOTE, "image with an alpha channel: alpha dropped"),
    "image_palette": (NOTE, "palette image: converted to RGB"),
    "image_exif_rotated": (NOTE, "image with an EXIF rotation: rotated upright when read"),
}


class DatasetError(ValueError):
    """A dataset cannot be used as it is. The message names the file, the object and the rule.

    ``rule`` and ``file`` are set when the error concerns one rule and one file (e.g. an image).
    """

    def __init__(self, message: str, rule: Optional[str] = None, file: Optional[str] = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.file = file


def file_error(rule: str, path: str, text: str) -> DatasetError:
    """A :class:`DatasetError` for ``rule`` at ``path``: ``"<path> [<rule>]: <text>"``."""
    if rule not in RULES:
        raise KeyError("unknown dataset rule %r" % rule)
    return DatasetError("%s [%s]: %s" % (path, rule, text), rule=rule, file=path)


class DatasetWarning(UserWarning):
    """A dataset was used after clipping or dropping something (one warning per rule, with counts)."""


@dataclass(frozen=True)
class Problem:
    """One occurrence of a rule: ``rule`` code, the ``file`` concerned and a ``detail`` (object, values)."""

    rule: str
    file: str
    detail: str = ""

    @property
    def action(self) -> str:
        return RULES[self.rule][0]

    def __str__(self) -> str:
        text = "%s [%s: %s]" % (self.file, self.rule, RULES[self.rule][1])
        return text + (": " + self.detail if self.detail else "")


class ProblemLog:
    """Collects :class:`Problem` s; summarises them per rule with counts and example files."""

    def __init__(self) -> None:
        self.problems: List[Problem] = []

    def add(self, rule: str, file: str, detail: str = "") -> None:
        """Record one problem. ``rule`` must be a key of :data:`RULES`."""
        if rule not in RULES:
            raise KeyError("unknown dataset rule %r; known rules: %s" % (rule, ", ".join(RULES)))
        self.problems.append(Problem(rule, str(file), detail))

    def extend(self, other: "ProblemLog") -> None:
        self.problems.extend(other.problems)

    def count(self, rule: Optional[str] = None) -> int:
        """Number of problems of ``rule`` (all problems when None)."""
        return sum(1 for p in self.problems if rule is None or p.rule == rule)

    def by_rule(self) -> "collections.OrderedDict[str, List[Problem]]":
        """Problems grouped per rule, in the order of :data:`RULES`."""
        groups: Dict[str, List[Problem]] = collections.defaultdict(list)
        for p in self.problems:
            groups[p.rule].append(p)
        return collections.OrderedDict((r, groups[r]) for r in RULES if r in groups)

    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.action == ERROR]

    @property
    def usable(self) -> bool:
        """True when no ``error`` problem was recorded."""
        return not self.errors()

    def summary(self, max_examples: int = 3) -> str:
        """A table: action, rule, count, number of files, what the rule says, example files."""
        rows = []
        for rule, probs in self.by_rule().items():
            action, text = RULES[rule]
            files = list(dict.fromkeys(p.file for p in probs))
            examples = "; ".join(
                p.file + (" (" + p.detail + ")" if p.detail else "") for p in probs[:max_examples])
            rows.append("%-5s %-20s %6d in %5d file(s)  %s\n      e.g. %s"
                        % (action, rule, len(probs), len(files), text, examples))
        return "\n".join(rows) if rows else "no problems found"

    def finish(self, source: str, raise_errors: bool = True, warn: bool = True) -> None:
        """Warn once per ``fix``/``drop`` rule with counts, then raise one error listing every error.

        Parameters
        ----------
        source : str
            What was loaded (e.g. ``"VOCDetection(2007_trainval)"``), for the messages.
        raise_errors : bool
            Raise :class:`DatasetError` when any ``error`` problem was recorded.
        warn : bool
            Emit the :class:`DatasetWarning` s.
        """
        if warn:
            for rule, probs in self.by_rule().items():
                action, text = RULES[rule]
                if action in (FIX, DROP):
                    nfiles = len(set(p.file for p in probs))
                    example = probs[0].file + (" (%s)" % probs[0].detail if probs[0].detail else "")
                    warnings.warn("%s: %s %d time(s) in %d file(s) [%s: %s], e.g. %s"
                                  % (source, "fixed" if action == FIX else "dropped", len(probs), nfiles,
                                     rule, text, example), DatasetWarning, stacklevel=3)
        errors = self.errors()
        if errors and raise_errors:
            shown = "\n  ".join(str(p) for p in errors[:20])
            more = "\n  ... and %d more" % (len(errors) - 20) if len(errors) > 20 else ""
            raise DatasetError("%s cannot be used: %d error(s) (run `python -m "
                               "gluon_bof.tools.validate_dataset` for a full report):\n  %s%s"
                               % (source, len(errors), shown, more))
