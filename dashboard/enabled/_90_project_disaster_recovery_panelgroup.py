"""Project → Disaster Recovery: the panel group the plugin's project panels live in.
The plugin's first file, so it adds the plugin's Django app (templates) for every panel,
once: Horizon does not merge repeated ``ADD_INSTALLED_APPS``."""

from django.utils.translation import gettext_lazy as _

PANEL_GROUP = "disaster_recovery"
PANEL_GROUP_NAME = _("Disaster Recovery")
PANEL_GROUP_DASHBOARD = "project"
ADD_INSTALLED_APPS = ["site_recovery.dashboard"]
