"""The DR library: domain model, site configuration, OpenStack clients, and the steps
the Mistral actions call."""
