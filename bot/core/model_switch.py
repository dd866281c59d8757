"""Which model version serves: registered in storage, loaded from disk, swapped in live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from bot.core.model_holder import ModelHolder
from bot.errors import SwitchError
from inference.classifier import Classifier
from inference.errors import ModelError
from inference.metadata import file_sha256
from storage.api import Storage
from storage.errors import ConflictError, LabelExistsError, StorageError
from storage.records import ModelStatus, ModelVersion

log = logging.getLogger(__name__)

ClassifierLoader = Callable[[Path], Classifier]


async def load_classifier(loader: ClassifierLoader, path: Path) -> Classifier:
    """Load off the event loop: building an onnxruntime session takes a noticeable moment."""
    try:
        return await asyncio.to_thread(loader, path)
    except ModelError as exc:
        raise SwitchError(str(exc)) from exc


class ModelSwitcher:
    def __init__(self, storage: Storage, holder: ModelHolder, loader: ClassifierLoader) -> None:
        self._storage = storage
        self._holder = holder
        self._loader = loader
        self._lock = asyncio.Lock()  # one switch at a time: a sync must not undo a rollback

    async def ensure_labels(self, classifier: Classifier) -> None:
        """Predictions may only use stored labels: add the model's own labels if missing."""
        known = {label.name for label in await self._storage.list_labels()}
        for name in classifier.labels:
            if name not in known:
                # LabelExistsError: another bot process added it meanwhile
                with contextlib.suppress(LabelExistsError):
                    await self._storage.add_label(name, added_by="model")

    async def register_current(self) -> None:
        """Record the serving version; it becomes active if storage has no active version."""
        classifier = self._holder.current
        await self.ensure_labels(classifier)
        sha = await asyncio.to_thread(file_sha256, classifier.onnx_file)
        try:
            await self._storage.register_model_version(
                classifier.version,
                path=str(classifier.folder.resolve()),
                sha256=sha,
                metadata={"labels": classifier.labels, "registered_by": "bot"},
            )
        except ConflictError as exc:
            log.warning("model version not registered: %s", exc)
            return
        if await self._storage.active_model_version() is None:
            await self._storage.activate_model_version(classifier.version)

    async def sync(self) -> bool:
        """Serve the version storage says is active (a trainer may have promoted a new one)."""
        async with self._lock:
            active = await self._storage.active_model_version()
            if active is None or active.version == self._holder.current.version:
                return False
            try:
                await self._install(active)
            except SwitchError as exc:
                log.warning("cannot serve active model %s: %s", active.version, exc)
                return False
            return True

    async def rollback(self, version: str | None) -> ModelVersion:
        """Serve `version` (default: the most recently retired one) and make it active."""
        async with self._lock:
            target = await self._rollback_target(version)
            await self._install(target)
            return await self._storage.activate_model_version(target.version)

    async def _rollback_target(self, version: str | None) -> ModelVersion:
        if version is not None:
            try:
                target = await self._storage.get_model_version(version)
            except StorageError as exc:
                raise SwitchError(str(exc)) from exc
            if target.status == ModelStatus.failed:
                raise SwitchError(f"model version {version} failed its checks")
            return target
        current = self._holder.current.version
        retired = [
            v
            for v in await self._storage.list_model_versions()
            if v.status == ModelStatus.retired and v.version != current
        ]
        if not retired:
            raise SwitchError("there is no earlier model version to go back to")
        return max(retired, key=lambda v: (v.promoted_at or v.created_at, v.created_at))

    async def _install(self, version: ModelVersion) -> None:
        classifier = await load_classifier(self._loader, Path(version.path))
        if classifier.version != version.version:
            raise SwitchError(
                f"{version.path} holds model {classifier.version}, not {version.version}"
            )
        await self.ensure_labels(classifier)
        self._holder.swap(classifier)
        log.info("now serving model %s", classifier.version)


async def follow_active_model(
    switcher: ModelSwitcher, interval_s: float, stop: asyncio.Event, *, who: str
) -> None:
    """Serve a model the trainer promoted, polling until `stop` (`open_runtime` runs one per
    process, whatever adapters it serves)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            break
        try:
            await switcher.sync()
        except Exception as exc:  # the database blipped: try again next time
            log.warning("%s: model check failed: %s", who, exc)
