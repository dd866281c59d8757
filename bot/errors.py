"""Errors of the bot process whose message is meant for the operator or the admin who asked
(cheap to import: the `memebot` CLI lists them before anything heavy loads)."""


class ConfigError(Exception):
    """The settings do not describe a bot that can start."""


class SwitchError(Exception):
    """A model version cannot be served; the message is shown to the admin who asked."""
