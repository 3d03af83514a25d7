"""The one error tree of opsjob. The API maps each class to an HTTP status once."""


class OpsjobError(Exception):
    """Root of every error opsjob raises on purpose."""

    def __init__(self, info: str) -> None:
        super().__init__(info)
        self.info = info


class InvalidInput(OpsjobError):
    """The request names a bad value; ``info`` names the field."""


class Unauthenticated(OpsjobError):
    """No credentials, or credentials nobody holds."""


class Forbidden(OpsjobError):
    """The caller is known but lacks the role for this project."""


class NotFound(OpsjobError):
    """The id or name does not exist in this project."""


class Conflict(OpsjobError):
    """The change collides with existing state (a duplicate name, a wrong state)."""


class TooLarge(OpsjobError):
    """The request body or upload is over its limit."""


class Unavailable(OpsjobError):
    """A service opsjob depends on (the database, the queue) cannot be reached right now."""


class InsufficientStorage(OpsjobError):
    """A write failed because the disk (or the database's disk) is full."""
