"""No pickle and no evaluation of user text anywhere in the product."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERIALISERS = "pickle|cloudpickle|dill|marshal|shelve"
FORBIDDEN = re.compile(
    rf"^\s*(import ({SERIALISERS})\b|from ({SERIALISERS}) )|\b(eval|exec)\(|yaml\.load\(",
    re.M,
)


def test_the_product_never_unpickles_or_evaluates_text() -> None:
    offenders = []
    for package in ("anomstream", "streams", "detectors", "training", "harness"):
        for path in (ROOT / package).rglob("*.py"):
            for match in FORBIDDEN.finditer(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}: {match.group(0).strip()}")
    assert not offenders


def test_the_check_catches_what_it_should() -> None:
    for bad in ("import pickle", "from dill import loads", "x = eval(text)", "yaml.load(f)"):
        assert FORBIDDEN.search(bad), bad
    assert not FORBIDDEN.search("orjson.loads(value)")
