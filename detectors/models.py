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
from collections.abc import Iterable
from pathlib import Path

from detectors.autoencoder import OnnxAutoencoder
from detectors.model_spec import MODEL_FILE, SPEC_FILE

log = logging.getLogger(__name__)

LOOKUP_CACHE = 100_000
"""Sources whose model is remembered (cleared beyond: a lookup is a few pattern matches)."""


class ModelBook:
    """The models under `root`, by directory name, with a source -> model lookup."""

    def __init__(self, root: Path | None, models: list[OnnxAutoencoder] | None = None) -> None:
        self.root = root
        self.models: dict[str, OnnxAutoencoder] = {}
        self.errors: dict[str, str] = {}
        self.quarantined: dict[str, int] = {}
        """Directory -> models quarantined from it (`quarantine`)."""
        self._stamps: dict[str, int] = {}
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
            if len(self._lookup) >= LOOKUP_CACHE:
                self._lookup.clear()
            self._lookup[source] = found
        return found  # type: ignore[return-value]

    def forget(self, sources: Iterable[str]) -> None:
        """Sources evicted from the worker: their lookups go too."""
        for source in sources:
            self._lookup.pop(source, None)

    def refresh(self) -> bool:
        """Reload what changed on disk; True when the set of models changed."""
        if self.root is None or not self.root.is_dir():
            return False
        seen: set[str] = set()
        changed = False
        # Hidden folders are work in progress (`train` builds a model aside, then moves it in).
        folders = (p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for directory in sorted(folders):
            try:
                stamp = (directory / SPEC_FILE).stat().st_mtime_ns
                (directory / MODEL_FILE).stat()
            except OSError:
                continue  # not a model directory (or one being written, or unreadable)
            seen.add(directory.name)
            if self._stamps.get(directory.name) == stamp:
                continue
            try:
                model = OnnxAutoencoder.load(directory)
            except Exception as exc:  # any bad directory: reported once, retried next time
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if self.errors.get(directory.name) != message:
                    log.error("model %s not loaded: %s", directory, message)
                self.errors[directory.name] = message
                continue  # a model already served from here keeps serving
            self.errors.pop(directory.name, None)
            self.models[directory.name] = model
            self._stamps[directory.name] = stamp
            changed = True
            log.debug("model %s loaded from %s", model.label, directory)
        for name in set(self.models) - seen:
            if name in self._stamps:  # loaded from this folder, now gone
                del self.models[name], self._stamps[name]
                changed = True
                log.info("model %s removed", name)
        for name in set(self.errors) - seen:
            del self.errors[name]
        if changed:
            self._lookup.clear()
        return changed

    def quarantine(self, model: OnnxAutoencoder, reason: str) -> None:
        """Stop serving `model`, which failed at run time: its directory's error says why
        (`errors`, for `/readyz`) and it is not loaded again until its `model.json` changes;
        `quarantined` counts it (a metric)."""
        for name, served in list(self.models.items()):
            if served is model or served.label == model.label:
                del self.models[name]
                self.errors[name] = f"quarantined: {reason}"
                self.quarantined[name] = self.quarantined.get(name, 0) + 1
        self._lookup.clear()
