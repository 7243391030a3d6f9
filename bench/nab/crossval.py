"""Leave-one-category-out NAB: the threshold (and any knob) chosen without the data it scores.

NAB's protocol optimises one threshold over the whole corpus and scores the same corpus at it,
so its figures are in-sample by construction. Here each of the 7 categories in turn is held
out: the threshold is optimised on the other 6 categories' files, the held-out files are scored
at it, and the raw scores of the 7 held-out parts are summed and normalised as NAB does (null
and perfect over all windows). Given several scorings of the corpus (one per value of a knob),
each fold chooses the value and the threshold together on its 6 categories.

Only re-thresholding: the per-file NAB files (`bench.nab.scorer.NabFile`) are built once.
"""

from __future__ import annotations

import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bench.nab import scorer as nab

K = TypeVar("K", bound=Hashable)


def category(f: nab.NabFile) -> str:
    return f.name.split("/")[0]


@dataclass(frozen=True, slots=True)
class Fold(Generic[K]):
    """One held-out category: what was chosen on the other six and what it scored."""

    category: str
    choice: K
    threshold: float
    raw: float
    """Raw score of the held-out category's files at the fold's choice."""
    windows: int


def held_out_raw(
    files: Sequence[nab.NabFile], name: str, threshold: float, profile: nab.Profile
) -> float:
    return sum(nab.score_file(f, threshold, profile) for f in files if category(f) == name)


def leave_one_category_out(
    variants: Mapping[K, Sequence[nab.NabFile]], profile: nab.Profile
) -> list[Fold[K]]:
    """Per category: the (variant, threshold) with the best raw score on the other categories
    (the first variant of equals: put the default first), scored on the held-out one."""
    if not variants:
        raise ValueError("no scoring of the corpus to cross-validate")
    names = [sorted({category(f) for f in files}) for files in variants.values()]
    if any(n != names[0] for n in names):
        raise ValueError("every variant must score the same categories")
    if len(names[0]) < 2:
        raise ValueError("leave-one-category-out needs at least two categories")
    folds = []
    for held in names[0]:
        best: tuple[float, K, float] | None = None
        for key, files in variants.items():
            threshold, raw = nab.optimize([f for f in files if category(f) != held], profile)
            if best is None or raw > best[0]:
                best = (raw, key, threshold)
        assert best is not None
        _, key, threshold = best
        chosen = variants[key]
        windows = sum(len(f.windows) for f in chosen if category(f) == held)
        folds.append(
            Fold(held, key, threshold, held_out_raw(chosen, held, threshold, profile), windows)
        )
    return folds


def category_score(raw: float, windows: int, profile: nab.Profile) -> float | None:
    """A category's own normalised score (None without windows: NAB's scale is undefined)."""
    return nab.normalize(raw, windows, profile) if windows else None


def spread(scores: Sequence[float | None]) -> dict[str, float]:
    """Min / median / max of the per-category normalised scores that are defined."""
    defined = [s for s in scores if s is not None]
    return {
        "min": min(defined),
        "median": statistics.median(defined),
        "max": max(defined),
        "std": statistics.pstdev(defined),
    }


def report(
    variants: Mapping[K, Sequence[nab.NabFile]],
    profiles: Sequence[nab.Profile],
    thresholds: Mapping[str, float],
    default: K,
) -> dict[str, dict[str, Any]]:
    """Per profile: the in-sample score (the default at the corpus threshold `thresholds`) and
    the leave-one-category-out score, both per category, and what each fold chose."""
    files = variants[default]
    n_windows = sum(len(f.windows) for f in files)
    cats = sorted({category(f) for f in files})
    out: dict[str, dict[str, Any]] = {}
    for profile in profiles:
        folds = leave_one_category_out(variants, profile)
        corpus = thresholds[profile.name]
        inside = {c: held_out_raw(files, c, corpus, profile) for c in cats}
        windows = {c: sum(len(f.windows) for f in files if category(f) == c) for c in cats}
        raw = sum(f.raw for f in folds)
        whole = {k: nab.optimize(v, profile)[1] for k, v in variants.items()}
        best = max(whole, key=lambda k: whole[k])  # the first of equals: the default
        out[profile.name] = {
            "in_sample_best": {
                "choice": best,
                "score": nab.normalize(whole[best], n_windows, profile),
            },
            "in_sample": {
                "score": nab.normalize(sum(inside.values()), n_windows, profile),
                "threshold": corpus,
                "per_category": spread(
                    [category_score(inside[c], windows[c], profile) for c in cats]
                ),
            },
            "cross_validated": {
                "score": nab.normalize(raw, n_windows, profile),
                "raw": raw,
                "per_category": spread([category_score(f.raw, f.windows, profile) for f in folds]),
            },
            "folds": {
                f.category: {
                    "choice": f.choice,
                    "threshold": f.threshold,
                    "raw": f.raw,
                    "in_sample_raw": inside[f.category],
                    "windows": f.windows,
                    "score": category_score(f.raw, f.windows, profile),
                    "in_sample_score": category_score(inside[f.category], f.windows, profile),
                }
                for f in folds
            },
        }
    return out
