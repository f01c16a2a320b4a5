"""Simulated Nova, Neutron, Cinder and Glance REST services for one lab site."""
