"""Where the shared benchmark data lives.

The public benchmark corpora (NAB, ...) are never copied into the repo; they sit in a shared
folder next to it. One resolver keeps the scorers, the CLIs and the tests looking in the same
places, in the same order.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ANOMSTREAM_BENCH_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]
FALLBACKS = (REPO_ROOT.parent / "shared" / "bench", Path("/work/shared/bench"))


def bench_root(explicit: str | Path | None = None) -> Path:
    """The benchmark data folder: `explicit`, else $ANOMSTREAM_BENCH_DATA, else the fallbacks.

    An explicit path or the env var is taken as given (a typo there should fail loudly rather than
    fall through to another copy of the data); only the built-in fallbacks are probed in turn.
    """
    chosen = explicit if explicit is not None else os.environ.get(ENV_VAR) or None
    candidates = (Path(chosen),) if chosen is not None else FALLBACKS
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"benchmark data not found (tried {tried}); set {ENV_VAR}")
