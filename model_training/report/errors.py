"""The report's one error type (torch-free: the CLI lists it to show its message plainly)."""


class ReportError(RuntimeError):
    """The report cannot be built (no dataset, no checkpoint, ...): the message says what to do."""
