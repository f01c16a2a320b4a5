"""A SQLite model of FlashArrays and the replication between them.

This is the world behind the mock storage driver and the lab's FlashArray REST simulator:
several arrays share one database file (the "fabric"), so replication really moves data
from one array's records to another's. Each :class:`FabricArray` offers the REST 1.x
operations of one array under the ``purestorage`` SDK's method names, returns the
array's JSON objects, and fails with :class:`PurityError` carrying Purity's own message
texts. Several processes may open the same fabric (WAL, one writer at a time).

Modelled: volumes with a content *generation* (so a test can prove which data a copy
holds), volume and pgroup snapshots, pgroup targets and ``allowed``, replication
transfers whose progress grows 0 -> 1 over ``transfer_seconds`` while the link is up,
replication schedules and retention, ActiveCluster pods stretched over two arrays that
mirror writes and freeze the losing side when the link fails, hosts and connections,
the 24 h destroyed-then-eradicated lifecycle, and faults on demand (array down, link
down, latency, an error on the Nth call of an operation). Time is the wall clock plus
an offset that tests may advance.

Its parts, one concern each: :mod:`.records` (schema, errors, shared lookups),
:mod:`.controls` (the fabric: database, clock, topology, data, faults),
:mod:`.replication` (what happens between calls), and the array's operations
(:mod:`.array`: volumes and hosts; :mod:`.pgroups`; :mod:`.pods`).
"""

from .array import FabricArray
from .controls import Fabric
from .records import ArrayDown, ArrayTimeout, PurityError

__all__ = ["ArrayDown", "ArrayTimeout", "Fabric", "FabricArray", "PurityError"]
