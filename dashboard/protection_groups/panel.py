"""The panel, shown to users whose catalog has the protection service."""

import horizon
from django.utils.translation import gettext_lazy as _


class ProtectionGroups(horizon.Panel):
    name = _("Protection Groups")
    slug = "protection_groups"
    permissions = ("openstack.services.protector",)
