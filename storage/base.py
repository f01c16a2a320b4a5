"""Value types of the storage layer and the array client every backend provides.

The DR driver (:mod:`site_recovery.storage.driver`) speaks in protection groups, recovery
points and materialised volumes. Underneath, it needs one small set of FlashArray
operations per array; :class:`ArrayClient` is that set. Three backends implement it: the
SQLite fabric (:mod:`.mock`) in process, ``py-pure-client`` over REST 2.x
(:mod:`.flasharray_rest2`), and the ``purestorage`` SDK over REST 1.x (:mod:`.flasharray`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InvalidArgument

# Purity object names: letters, digits and '-', starting and ending alphanumeric, <= 63.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_name(kind: str, value: str) -> str:
    """Refuse a name Purity would refuse, before anything is sent to an array."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidArgument(
            f"invalid {kind} name {value!r}: use 1-63 letters, digits and '-', "
            "starting and ending with a letter or digit", obj=str(value))
    return value


class StrEnum(str, enum.Enum):
    """``enum.StrEnum`` as Python 3.11 defines it, for Mistral's executors on 3.10: a
    member is its value in ``str()``, f-strings, JSON and SQL."""

    __str__ = str.__str__
    __format__ = str.__format__


class ReplicationType(StrEnum):
    ASYNC = "async"   # protection-group snapshots shipped on a schedule; RPO = lag
    SYNC = "sync"     # ActiveCluster pod stretched over both arrays; RPO 0 while in sync


class Purpose(StrEnum):
    """Why materialised volumes exist; part of their names, so cleanup finds only its own."""

    DRILL = "drill"
    FAILOVER = "failover"


@dataclass(frozen=True)
class ProtectionSpec:
    """One protection group as the arrays see it: a pgroup (async) or a pod (sync).

    ``name`` is the array object's name. The source array runs the workload; the target
    array receives replicas and is where recovery happens.
    """

    name: str
    replication_type: ReplicationType
    source_array: str
    target_array: str
    replicate_interval: int = 3600        # seconds between scheduled replications
    retention_seconds: int = 86400        # keep every replicated snapshot this long

    def __post_init__(self):
        check_name("protection group", self.name)
        object.__setattr__(self, "replication_type", ReplicationType(self.replication_type))
        if self.source_array == self.target_array:
            raise InvalidArgument(
                f"protection group {self.name}: source and target array are both "
                f"{self.source_array}", obj=self.name)
        if self.replicate_interval < 1 or self.retention_seconds < 1:
            raise InvalidArgument(
                f"protection group {self.name}: replicate_interval and retention_seconds "
                "must be positive", obj=self.name)

    def reversed(self) -> ProtectionSpec:
        """The same group replicating the other way (failback)."""
        return replace(self, source_array=self.target_array, target_array=self.source_array)

    @property
    def sync_pgroup(self) -> str:
        """Pgroup inside a sync group's pod, for crash-consistent snapshots of all members."""
        return f"{self.name}::{self.name}"


@dataclass(frozen=True)
class RecoveryPoint:
    """A crash-consistent image of a group's volumes, held on the target array."""

    name: str                      # the pgroup snapshot's name on the target array
    group: str
    array: str
    created: datetime
    completed: datetime | None
    progress: float                # 0..1; only fully transferred points are usable

    @property
    def fully_transferred(self) -> bool:
        return self.progress >= 1.0 and self.completed is not None

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.created).total_seconds())


@dataclass(frozen=True)
class MaterialisedVolume:
    """An independent read/write volume made from a recovery point on the target array."""

    source: str       # member volume name on the source array
    name: str         # new volume name on the target array
    serial: str       # survives renames (Cinder's manage renames the volume)
    size: int         # bytes


@dataclass(frozen=True)
class Connection:
    peer: str
    status: str       # Purity's: connected, connecting, partially_connected, unbalanced
    types: tuple[str, ...]

    @property
    def connected(self) -> bool:
        return self.status == "connected"


@dataclass(frozen=True)
class ArrayHealth:
    array: str
    reachable: bool
    detail: str = ""
    version: str | None = None
    connections: tuple[Connection, ...] = field(default_factory=tuple)

    def connection_to(self, peer: str) -> Connection | None:
        return next((c for c in self.connections if c.peer == peer), None)


@dataclass(frozen=True)
class ArrayEndpoint:
    """How to reach one array. ``name`` is the array's own Purity name."""

    name: str
    address: str                     # management address, host[:port]
    api_token: str
    verify_tls: bool | str | Path = False   # False, True, or a CA bundle path

    @classmethod
    def from_token_file(cls, name: str, address: str, token_file: str | Path,
                        verify_tls: bool | str | Path = False) -> ArrayEndpoint:
        token = Path(token_file).read_text().strip()
        if not token:
            raise InvalidArgument(f"API token file for array {name} is empty: {token_file}",
                                  array=name)
        return cls(name, address, token, verify_tls)

    def __repr__(self):                # never show the token
        return f"ArrayEndpoint(name={self.name!r}, address={self.address!r})"


def parse_time(value: Any) -> datetime | None:
    """Purity REST 1.x timestamps are ISO-8601 strings ending in Z."""
    if value in (None, ""):
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)


class ArrayClient:
    """The FlashArray operations the DR driver uses, on one array.

    Method names and arguments follow the ``purestorage`` SDK (REST 1.x). Results are the
    array's JSON objects. Failures are :mod:`.errors` types: a backend translates its own
    transport and Purity errors in :meth:`_call`.
    """

    name: str

    def _call(self, operation: str, *args, **kwargs) -> Any:
        raise NotImplementedError

    # -- array ---------------------------------------------------------------------------
    def get_array(self) -> dict:
        return self._call("get")

    def list_array_connections(self) -> list[dict]:
        return self._call("list_array_connections")

    # -- volumes -------------------------------------------------------------------------
    def list_volumes(self, **flags) -> list[dict]:
        return self._call("list_volumes", **flags)

    def get_volume(self, name: str) -> dict:
        return self._call("get_volume", name)

    def create_volume(self, name: str, size: int) -> dict:
        return self._call("create_volume", name, size)

    def copy_volume(self, source: str, dest: str, overwrite: bool = False) -> dict:
        return self._call("copy_volume", source, dest, overwrite=overwrite)

    def move_volume(self, name: str, container: str) -> dict:
        return self._call("move_volume", name, container)

    def destroy_volume(self, name: str) -> dict:
        return self._call("destroy_volume", name)

    def eradicate_volume(self, name: str) -> dict:
        return self._call("eradicate_volume", name)

    def list_volume_private_connections(self, name: str) -> list[dict]:
        return self._call("list_volume_private_connections", name)

    # -- protection groups ---------------------------------------------------------------
    def create_pgroup(self, name: str) -> dict:
        return self._call("create_pgroup", name)

    def get_pgroup(self, name: str, **flags) -> Any:
        return self._call("get_pgroup", name, **flags)

    def set_pgroup(self, name: str, **changes) -> Any:
        return self._call("set_pgroup", name, **changes)

    def create_pgroup_snapshot(self, source: str, **options) -> dict:
        return self._call("create_pgroup_snapshot", source, **options)

    def destroy_pgroup(self, name: str) -> dict:
        return self._call("destroy_pgroup", name)

    def eradicate_pgroup(self, name: str) -> dict:
        return self._call("eradicate_pgroup", name)

    # -- pods ----------------------------------------------------------------------------
    def create_pod(self, name: str) -> dict:
        return self._call("create_pod", name)

    def get_pod(self, name: str) -> dict:
        return self._call("get_pod", name)

    def set_pod(self, name: str, **changes) -> dict:
        return self._call("set_pod", name, **changes)

    def add_pod(self, pod: str, array: str) -> dict:
        return self._call("add_pod", pod, array)

    def remove_pod(self, pod: str, array: str, **options) -> dict:
        return self._call("remove_pod", pod, array, **options)

    def destroy_pod(self, name: str) -> dict:
        return self._call("destroy_pod", name)

    def eradicate_pod(self, name: str) -> dict:
        return self._call("eradicate_pod", name)
