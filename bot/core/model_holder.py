"""The classifier in use, replaceable while the bot runs (after /rollback or a retrain)."""

from __future__ import annotations

import threading

from inference.classifier import Classifier


class ModelHolder:
    """`current` is read once per batch, so requests already running keep the model they
    started with; `swap` only affects what starts afterwards."""

    def __init__(self, classifier: Classifier) -> None:
        self._current = classifier
        self._lock = threading.Lock()

    @property
    def current(self) -> Classifier:
        return self._current

    def swap(self, new: Classifier) -> Classifier:
        """Install `new`; returns the previous classifier (freed once its last batch ends)."""
        with self._lock:
            old, self._current = self._current, new
        return old
