"""Errors of the storage layer; each message says what was wrong with the caller's input.

Every error is raised before the transaction commits, so the database is left unchanged.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class: something the caller asked for cannot be stored or found."""


class InvalidInputError(StorageError, ValueError):
    """An id, name or number is malformed (too long, empty, wrong characters, out of range)."""


class UnknownLabelError(StorageError, LookupError):
    """A label that has not been added with `add_label`."""


class LabelExistsError(StorageError):
    """`add_label` for a label that already exists."""


class NotFoundError(StorageError, LookupError):
    """A post, prediction, model version or job id that does not exist."""


class BlobError(StorageError, ValueError):
    """Bytes that are not a complete, decodable image (truncated, corrupt, not an image)."""


class ConflictError(StorageError):
    """A request that contradicts stored state (e.g. re-registering a version with other bytes)."""


class StateError(StorageError):
    """An operation not allowed in the object's current status (e.g. finishing a failed job)."""


class AlreadyTrainedError(StateError):
    """A retrain used this correction: it cannot be undone any more."""
