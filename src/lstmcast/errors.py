"""Exception classes. Each message is one line naming the column/row/parameter/file,
the value received and what is allowed; the CLI prints it and exits with code 2."""


class LstmcastError(Exception):
    """Base class for every error lstmcast raises on purpose."""


class DataError(LstmcastError, ValueError):
    """The input table is unusable: missing file, unknown column, bad values, too few rows."""


class ConfigError(LstmcastError, ValueError):
    """A parameter or option has a value that is not allowed."""


class TrainingError(LstmcastError):
    """Training ended without a usable model (e.g. every epoch diverged)."""


class ModelFileError(LstmcastError):
    """A saved model directory is missing, corrupt, from elsewhere or from a newer format."""


class NotFittedError(LstmcastError, AttributeError):
    """A forecaster was used before `fit` (or `load`)."""


class StorageError(ConfigError):
    """A study's storage cannot be opened: server unreachable, credentials refused, database
    missing, or its driver not installed (the message names the URL, password hidden)."""
