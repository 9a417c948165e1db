"""The engine's two exceptions. Their messages are sentences for the end user."""


class EngineError(Exception):
    """The image cannot be upscaled as asked (unreadable, unsupported, no model for the scale...). ``code`` is
    a machine-readable word for APIs: invalid, unsupported_format or too_large."""

    code = "invalid"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class Unreadable(EngineError):
    """Not an image of an allowed format, or damaged, truncated, animated or of an unsupported variant."""


class Cancelled(EngineError):
    """The caller's ``cancelled()`` returned True; the job stopped between two tiles (or two reads of the
    file while it was decoded)."""

    def __init__(self, message: str = "The upscaling was cancelled."):
        super().__init__(message)
