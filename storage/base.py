"""Value types of the storage layer and the array client every backend provides.

The DR driver (:mod:`site_recovery.storage.driver`) speaks in protection groups, recovery
points and materialised volumes. Underneath, it needs one small set of FlashArray
operations per array, named for what the driver does with them; :class:`ArrayClient` is
that set, with typed results. Three backends implement it: ``py-pure-client`` over REST
2.x (:mod:`.flasharray_rest2`), and over REST 1.x's vocabulary (:mod:`.rest1`) the
``purestorage`` SDK (:mod:`.flasharray`) and the SQLite fabric in process (:mod:`.mock`).
"""

from __future__ import annotations

import abc
import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

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


@dataclass(frozen=True)
class Volume:
    """A volume or volume snapshot, as the driver needs it."""

    name: str
    serial: str
    size: int                  # bytes
    destroyed: bool = False    # waiting out the array's eradication window


@dataclass(frozen=True)
class PgroupState:
    """A protection group's members and targets (target array -> replica allowed)."""

    name: str
    volumes: tuple[str, ...]
    targets: dict[str, bool]


@dataclass(frozen=True)
class PgroupSnapshot:
    """A protection-group snapshot and, where it was replicated, its transfer."""

    name: str
    created: datetime
    completed: datetime | None = None
    progress: float | None = None     # None: no transfer known (a local snapshot)


@dataclass(frozen=True)
class PodArray:
    """One array of a pod: ``online`` while it serves the pod; when it stopped, the
    moment its copy froze."""

    name: str
    status: str
    frozen_at: datetime | None = None


class ArrayClient(abc.ABC):
    """The FlashArray operations the DR driver uses, on one array, in its own terms.

    Each backend speaks its REST version underneath: :mod:`.rest1` (the ``purestorage``
    SDK and the in-process fabric) and :mod:`.flasharray_rest2` (``py-pure-client``).
    Failures are :mod:`.errors` types naming the array and the object: a missing object
    :class:`~.errors.NotFound`, a name taken :class:`~.errors.AlreadyExists` (a destroyed
    one :class:`~.errors.PendingEradication`), a dead array
    :class:`~.errors.ArrayUnreachable`.
    """

    name: str

    # -- array ---------------------------------------------------------------------------
    @abc.abstractmethod
    def version(self) -> str | None:
        """The array's Purity version (it answers: it is reachable)."""

    @abc.abstractmethod
    def connections(self) -> list[Connection]:
        """Its replication connections, one per peer array."""

    # -- volumes -------------------------------------------------------------------------
    @abc.abstractmethod
    def volume(self, name: str) -> Volume:
        """A live volume (a destroyed one is :class:`~.errors.NotFound`)."""

    @abc.abstractmethod
    def volumes(self, *, destroyed: bool = False) -> list[Volume]:
        """Every live volume; with ``destroyed``, those waiting for eradication too."""

    @abc.abstractmethod
    def copy_volume(self, source: str, dest: str, overwrite: bool = False) -> Volume:
        """A new volume ``dest`` (or ``dest`` overwritten) with ``source``'s data."""

    @abc.abstractmethod
    def move_volume(self, name: str, pod: str):
        """Into ``pod``, or to the array's root for ``""``."""

    @abc.abstractmethod
    def destroy_volume(self, name: str):
        """Destroyed: eradicated when the array's eradication window ends."""

    @abc.abstractmethod
    def eradicate_volume(self, name: str):
        """Gone for good (it must be destroyed first)."""

    # -- protection groups ---------------------------------------------------------------
    @abc.abstractmethod
    def create_pgroup(self, name: str):
        """An empty protection group."""

    @abc.abstractmethod
    def pgroup(self, name: str) -> PgroupState:
        """A live protection group's members and targets."""

    @abc.abstractmethod
    def set_replication(self, name: str, *, interval: int | None = None,
                        retention: int | None = None, enabled: bool | None = None):
        """The schedule (seconds between replications), how long every snapshot is kept
        on both sides (seconds), and whether the schedule runs; ``None`` leaves it."""

    @abc.abstractmethod
    def add_target(self, name: str, array: str):
        """Replicate the group to ``array``."""

    @abc.abstractmethod
    def remove_target(self, name: str, array: str):
        """Stop replicating the group to ``array``."""

    @abc.abstractmethod
    def allow_replica(self, replica: str):
        """On the target array: accept the replica ``<source array>:<group>``."""

    @abc.abstractmethod
    def add_volumes(self, name: str, volumes: list[str]):
        """Make ``volumes`` members (one of them a member already: AlreadyExists)."""

    @abc.abstractmethod
    def remove_volumes(self, name: str, volumes: list[str]):
        """Take ``volumes`` out of the group; they stay on the array."""

    @abc.abstractmethod
    def destroy_pgroup(self, name: str):
        """The group (or a replica) destroyed with its snapshots."""

    @abc.abstractmethod
    def eradicate_pgroup(self, name: str):
        """A destroyed group gone for good."""

    # -- protection-group snapshots: the recovery points -------------------------------
    @abc.abstractmethod
    def snapshot_pgroup(self, name: str, suffix: str, replicate_now: bool = False) -> str:
        """A snapshot of every member at one moment, ``<group>.<suffix>``; with
        ``replicate_now`` also sent to the targets at once. Returns its name."""

    @abc.abstractmethod
    def pgroup_snapshots(self, name: str) -> list[PgroupSnapshot]:
        """A group's (or replica's) live snapshots with their replication progress."""

    @abc.abstractmethod
    def pgroup_snapshot(self, name: str) -> PgroupSnapshot:
        """One live group snapshot by its name ``<group>.<suffix>``."""

    @abc.abstractmethod
    def pgroup_snapshot_volumes(self, name: str) -> list[str]:
        """The volume snapshots a group snapshot holds, ``<snapshot>.<volume>``."""

    @abc.abstractmethod
    def destroy_pgroup_snapshot(self, name: str):
        """Destroyed: eradicated when the array's eradication window ends."""

    @abc.abstractmethod
    def eradicate_pgroup_snapshot(self, name: str):
        """A destroyed group snapshot gone for good."""

    # -- pods ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_pod(self, name: str):
        """An empty pod on this array alone."""

    @abc.abstractmethod
    def pod_arrays(self, name: str) -> dict[str, PodArray]:
        """A live pod's arrays by name."""

    @abc.abstractmethod
    def stretch_pod(self, name: str, array: str):
        """Stretch the pod to ``array`` (ActiveCluster: synchronous replication)."""

    @abc.abstractmethod
    def unstretch_pod(self, name: str, array: str):
        """Take ``array`` out of the pod; its copy of the pod leaves it."""

    @abc.abstractmethod
    def prefer_array(self, name: str, array: str):
        """The array that keeps the pod online if the arrays lose each other."""

    @abc.abstractmethod
    def destroy_pod(self, name: str):
        """An empty pod destroyed."""

    @abc.abstractmethod
    def eradicate_pod(self, name: str):
        """A destroyed pod gone for good."""
