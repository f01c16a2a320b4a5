"""Typed storage errors.

Every error names the array and the object it concerns, so a failed DR step can say
exactly what went wrong where. Array-side failures reach us as Purity message texts
(REST 1.x 400 bodies); :func:`from_purity` maps them onto these types the way Cinder's
Pure driver does, by substring.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage-layer failure."""

    def __init__(self, message: str, *, array: str | None = None, obj: str | None = None):
        super().__init__(message)
        self.array = array
        self.obj = obj


class InvalidArgument(StorageError, ValueError):
    """The caller asked for something malformed; nothing was sent to an array."""


class ArrayUnreachable(StorageError):
    """The array did not answer within the timeout, or refused the connection."""

    def __init__(self, array: str, cause: str):
        super().__init__(f"array {array} is unreachable: {cause}", array=array)
        self.cause = cause


class ArrayOperationFailed(StorageError):
    """The array answered with an error this layer has no more specific type for."""

    def __init__(self, array: str, obj: str | None, message: str):
        where = f" on {obj}" if obj else ""
        super().__init__(f"array {array} refused the operation{where}: {message}",
                         array=array, obj=obj)


class NotFound(ArrayOperationFailed):
    """The named object does not exist on the array (or only as destroyed)."""


class AlreadyExists(ArrayOperationFailed):
    """An object of that name already exists on the array."""


class PendingEradication(AlreadyExists):
    """An object of that name exists in the destroyed state (24 h before eradication)."""


class NoRecoveryPoint(StorageError):
    """The DR array holds no fully transferred recovery point for the group."""

    def __init__(self, array: str, group: str, detail: str = ""):
        text = f"array {array} has no usable recovery point for {group}"
        super().__init__(f"{text}: {detail}" if detail else text, array=array, obj=group)


class ReplicationLinkDown(StorageError):
    """The replication connection between two arrays is not connected."""

    def __init__(self, source: str, target: str, status: str):
        super().__init__(
            f"replication link {source} -> {target} is down (connection status: {status})",
            array=source, obj=target)
        self.status = status


class ReplicationTimeout(StorageError):
    """A replication transfer did not complete within the allowed time."""

    def __init__(self, array: str, snapshot: str, seconds: float, progress: float):
        super().__init__(
            f"replication of {snapshot} to {array} did not complete within {seconds:g} s "
            f"(progress {progress:.0%})", array=array, obj=snapshot)
        self.progress = progress


# Purity's message fragments, as matched by Cinder's Pure driver and the Ansible modules.
_NOT_FOUND = ("does not exist", "could not be found")
_PENDING = ("has been destroyed",)
_EXISTS = ("already exists", "already includes", "already allowed on", "already belongs to")


def from_purity(array: str, obj: str | None, message: str) -> ArrayOperationFailed:
    """Turn one Purity error message into the matching typed error."""
    if any(fragment in message for fragment in _PENDING):
        return PendingEradication(array, obj, message)
    if any(fragment in message for fragment in _NOT_FOUND):
        return NotFound(array, obj, message)
    if any(fragment in message for fragment in _EXISTS):
        return AlreadyExists(array, obj, message)
    return ArrayOperationFailed(array, obj, message)
