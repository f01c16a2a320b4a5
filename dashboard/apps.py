from django.apps import AppConfig


class SiteRecoveryDashboard(AppConfig):
    """The plugin as a Django app, for its templates; labelled apart from Horizon's own."""

    name = "site_recovery.dashboard"
    label = "site_recovery_dashboard"
