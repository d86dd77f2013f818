"""Errors a user can cause and fix: the CLI prints them as one sentence and exits with code 2."""


class ConfigError(ValueError):
    """A bad value in a recipe, on the command line or in a constructor call.

    The message is one sentence that names the setting and says what to change.
    """


class DataNotFoundError(ConfigError):
    """A data set is not on disk and cannot be downloaded; the message says how to get it."""
