"""Mistral actions: thin, idempotent adapters over site_recovery.core steps."""
