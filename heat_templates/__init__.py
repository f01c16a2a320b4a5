"""Jinja2 templates that render the Heat stacks rebuilding a protection group on the DR site."""
