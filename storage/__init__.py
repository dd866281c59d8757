"""Persistence: images, posts, predictions, corrections, labels, model versions, retrain jobs.

Use `Storage` (storage.api); it returns the frozen records of storage.records and raises the
errors of storage.errors. Importing this package is cheap; SQLAlchemy loads with `Storage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.errors import (
    BlobError,
    ConflictError,
    InvalidInputError,
    LabelExistsError,
    NotFoundError,
    StateError,
    StorageError,
    UnknownLabelError,
)

if TYPE_CHECKING:
    from storage.api import Storage

__all__ = [
    "BlobError",
    "ConflictError",
    "InvalidInputError",
    "LabelExistsError",
    "NotFoundError",
    "StateError",
    "Storage",
    "StorageError",
    "UnknownLabelError",
]


def __getattr__(name: str) -> Any:
    if name == "Storage":
        from storage.api import Storage

        return Storage
    raise AttributeError(name)
