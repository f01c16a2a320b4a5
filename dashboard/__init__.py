"""Horizon plugin: the Disaster Recovery panels over the protection service's API.

Horizon is not a requirement of the product: these modules import Horizon and Django, so
they load only inside a Horizon that enables them (the ``enabled/`` files, copied or
linked into Horizon's ``openstack_dashboard/local/enabled/``).
"""
