"""Django settings of the dashboard's view tests: Horizon's own test settings
(``openstack_dashboard/test/settings.py``) with the plugin enabled through its ``enabled/``
files, as an operator enables it. Only Horizon's environment can load them (the lab's
Horizon venv: ``tests/functional/horizon/test_views.py`` runs them there)."""

from openstack_dashboard.test.settings import *  # noqa: F403
from openstack_dashboard.test.settings import HORIZON_CONFIG, INSTALLED_APPS
from openstack_dashboard.utils import settings as settings_utils

from site_recovery.dashboard import enabled

# Horizon's test settings have enabled Horizon's own dashboards; what the plugin's files
# add (its panel groups, panels and Django app) joins them.
_plugin_config: dict = {}
_plugin_apps: list = []
settings_utils.update_dashboards([enabled], _plugin_config, _plugin_apps)
HORIZON_CONFIG["panel_customization"] += _plugin_config["panel_customization"]
INSTALLED_APPS[0:0] = _plugin_apps
