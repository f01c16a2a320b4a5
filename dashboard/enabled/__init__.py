"""Horizon's ``enabled/`` files of the plugin: copy or link them into Horizon's
``openstack_dashboard/local/enabled/`` (docs/guides, the lab's ``services/horizon.py``)."""
