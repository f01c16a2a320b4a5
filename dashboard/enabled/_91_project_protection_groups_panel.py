"""Project → Disaster Recovery → Protection Groups."""

PANEL = "protection_groups"
PANEL_DASHBOARD = "project"
PANEL_GROUP = "disaster_recovery"
ADD_PANEL = "site_recovery.dashboard.protection_groups.panel.ProtectionGroups"
