"""Array drivers behind one DR interface: :class:`StorageDriver`.

``mock_driver`` runs it over simulated arrays (SQLite), ``flasharray_driver`` over real
FlashArrays through the ``purestorage`` SDK.
"""

from .base import (
    ArrayHealth,
    Connection,
    MaterialisedVolume,
    ProtectionSpec,
    Purpose,
    RecoveryPoint,
    ReplicationType,
)
from .driver import StorageDriver, materialised_name, materialised_prefix
from .errors import (
    AlreadyExists,
    ArrayOperationFailed,
    ArrayUnreachable,
    InvalidArgument,
    NoRecoveryPoint,
    NotFound,
    PendingEradication,
    ReplicationLinkDown,
    ReplicationTimeout,
    StorageError,
)

__all__ = [
    "AlreadyExists", "ArrayHealth", "ArrayOperationFailed", "ArrayUnreachable", "Connection",
    "InvalidArgument", "MaterialisedVolume", "NoRecoveryPoint", "NotFound",
    "PendingEradication", "ProtectionSpec", "Purpose", "RecoveryPoint", "ReplicationLinkDown",
    "ReplicationTimeout", "ReplicationType", "StorageDriver", "StorageError",
    "materialised_name", "materialised_prefix",
]
