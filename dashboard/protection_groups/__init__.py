"""The project's protection groups, as the protection service lists them."""
