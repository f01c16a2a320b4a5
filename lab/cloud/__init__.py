"""Simulated Nova, Neutron, Cinder and Glance REST services for one lab site.

Real clients (openstacksdk, the ``openstack`` CLI, and the legacy clients Heat uses) talk
to it unmodified. :func:`create_app` builds the Flask app from a :class:`CloudConfig`,
:func:`wrap_with_keystone` puts Keystone's ``auth_token`` in front of it, and
:func:`main` (``python -m site_recovery.lab.cloud``) serves it. Faults on demand:
:mod:`.faults`.
"""

from .app import create_app
from .identity import wrap_with_keystone
from .server import CloudServer, main
from .state import CloudConfig

__all__ = ["CloudConfig", "CloudServer", "create_app", "main", "wrap_with_keystone"]
