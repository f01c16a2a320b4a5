"""The panel, shown to ``dr_site_admin`` only: a site failover is theirs alone, and the
service refuses it to anyone else, so nobody else should be offered it. Horizon's Admin
dashboard is a cloud admin's, and the panel lists every project's groups (which the
service shows an ``admin``), so it asks for both roles."""

import horizon
from django.utils.translation import gettext_lazy as _


class SiteRecovery(horizon.Panel):
    name = _("Site Recovery")
    slug = "site_recovery"
    permissions = ("openstack.services.protector", "openstack.roles.admin",
                   "openstack.roles.dr_site_admin")
