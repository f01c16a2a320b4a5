"""The real OpenStack services of a lab site (Keystone, Heat, Mistral), each in its own venv."""
