"""Admin → Disaster Recovery → Site Recovery (``dr_site_admin`` only)."""

PANEL = "site_recovery"
PANEL_DASHBOARD = "admin"
PANEL_GROUP = "disaster_recovery"
ADD_PANEL = "site_recovery.dashboard.site_admin.panel.SiteRecovery"
