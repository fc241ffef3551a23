"""User-facing errors. The CLI prints ``str(error)`` as one line and exits non-zero."""


class DeepfillError(Exception):
    """Base class for errors caused by bad input rather than by a bug."""


class CheckpointError(DeepfillError):
    """A checkpoint is missing, unreadable, of another model, or does not match the model."""


class InputError(DeepfillError):
    """An image, mask or other input file is missing, unreadable or of the wrong size."""


class ConfigError(DeepfillError):
    """A configuration file or override is invalid."""
