"""Which model serves which source: the model directories under one folder, reloaded live.

Every subdirectory with a `model.json` and a `model.onnx` is a model; its `sources` patterns say
which sources it serves (the first match by directory name wins). `refresh()` looks for new,
changed or removed directories; the scorer calls it between micro-batches, so a model dropped in
by `anomstream train` is picked up without a restart and without losing a record. A directory
that cannot be loaded is reported and skipped; the models already loaded keep serving. A model is
(re)loaded when its `model.json` changes: training writes it last and atomically, so a model
being retrained keeps being served as it was until its new description lands.
"""

from __future__ import annotations

import logging
from pathlib import Path

from detectors.autoencoder import OnnxAutoencoder
from detectors.model_spec import MODEL_FILE, SPEC_FILE, ModelError

log = logging.getLogger(__name__)


class ModelBook:
    """The models under `root`, by directory name, with a source -> model lookup."""

    def __init__(self, root: Path | None, models: list[OnnxAutoencoder] | None = None) -> None:
        self.root = root
        self.models: dict[str, OnnxAutoencoder] = {}
        self.errors: dict[str, str] = {}
        self._stamps: dict[str, float] = {}
        """Directory -> mtime of the `model.json` it was loaded from."""
        self._lookup: dict[str, OnnxAutoencoder | None] = {}
        for model in models or []:
            self.models[model.spec.name] = model
        if root is not None:
            self.refresh()

    def for_source(self, source: str) -> OnnxAutoencoder | None:
        found = self._lookup.get(source, self)
        if found is self:
            found = next((m for _, m in sorted(self.models.items()) if m.spec.serves(source)), None)
            self._lookup[source] = found
        return found  # type: ignore[return-value]

    def refresh(self) -> bool:
        """Reload what changed on disk; True when the set of models changed."""
        if self.root is None or not self.root.is_dir():
            return False
        seen: dict[str, float] = {}
        changed = False
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                stamp = (directory / SPEC_FILE).stat().st_mtime
                (directory / MODEL_FILE).stat()
            except FileNotFoundError:
                continue  # not a model directory (or one being written)
            seen[directory.name] = stamp
            if self._stamps.get(directory.name) == stamp:
                continue
            try:
                model = OnnxAutoencoder.load(directory)
            except (ModelError, OSError, RuntimeError) as exc:
                message = str(exc).splitlines()[0]
                if self.errors.get(directory.name) != message:
                    log.error("model %s not loaded: %s", directory, message)
                self.errors[directory.name] = message
                continue
            self.errors.pop(directory.name, None)
            self.models[directory.name] = model
            changed = True
            log.info("model %s loaded from %s", model.label, directory)
        for name in set(self._stamps) - set(seen):
            self.models.pop(name, None)
            changed = True
            log.info("model %s removed", name)
        self._stamps = {name: stamp for name, stamp in seen.items() if name in self.models}
        if changed:
            self._lookup.clear()
        return changed
