"""The models directory as the API sees it: models by name, loaded once per change, the
worker's routing of sources to models, and each model's description and plots.

Pure: no FastAPI here, so the job processes (`anomstream.api.work`) load models the same way.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detectors.autoencoder import OnnxAutoencoder
from detectors.model_spec import MODEL_FILE, SPEC_FILE, ModelError
from detectors.models import ModelBook

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""A model directory's name as the API accepts it: no path, never hidden."""


class ModelNotFound(LookupError):
    """No model directory of that name."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One model directory: what `GET /v1/models` lists (`error` when it cannot be served)."""

    name: str
    path: Path
    spec: dict[str, Any] | None
    error: str | None = None

    def plots(self) -> list[str]:
        """The PNG files training and evaluation wrote, as paths relative to the directory."""
        found = sorted(p.name for p in self.path.glob("*.png"))
        found += sorted(f"evaluation/{p.name}" for p in (self.path / "evaluation").glob("*.png"))
        return found


class Catalog:
    """The models under `root`, by directory name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[int, OnnxAutoencoder]] = {}
        self._book = ModelBook(root)

    def directory(self, name: str) -> Path:
        if not NAME.match(name) or not (self.root / name / SPEC_FILE).is_file():
            raise ModelNotFound(f"no model {name!r} in {self.root}")
        return self.root / name

    def load(self, name: str) -> OnnxAutoencoder:
        """The model of directory `name`, reloaded when its `model.json` changed."""
        directory = self.directory(name)
        stamp = (directory / SPEC_FILE).stat().st_mtime_ns
        with self._lock:
            cached = self._loaded.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        model = OnnxAutoencoder.load(directory)  # ModelError: one line, the route says 422
        with self._lock:
            self._loaded[name] = (stamp, model)
        return model

    def routing(self) -> ModelBook:
        """The worker's routing (each source to the first model whose patterns match), as a
        snapshot of the directory now: a call scores against one set of models throughout."""
        with self._lock:
            self._book.refresh()
            snapshot = ModelBook(None)
            snapshot.models = dict(self._book.models)
        return snapshot

    def entries(self) -> list[Entry]:
        if not self.root.is_dir():
            return []
        out = []
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if NAME.match(directory.name) and (directory / SPEC_FILE).is_file():
                out.append(self.entry(directory.name))
        return out

    def entry(self, name: str) -> Entry:
        directory = self.directory(name)
        try:
            spec = orjson.loads((directory / SPEC_FILE).read_bytes())
            if not isinstance(spec, dict):
                raise ModelError(f"{directory / SPEC_FILE} is not a JSON object")
            if not (directory / MODEL_FILE).is_file():
                raise ModelError(f"{directory}: no {MODEL_FILE}")
        except (OSError, ValueError) as exc:
            return Entry(name, directory, None, str(exc).splitlines()[0])
        return Entry(name, directory, spec)
