"""Errors of the inference path; their messages are written for the person who sent the input."""


class ImageError(ValueError):
    """The bytes are not an image we can classify (corrupt, truncated, too large, not an image)."""


class ModelError(RuntimeError):
    """No usable model: missing folder, unreadable metadata, or an ONNX file that does not load."""
