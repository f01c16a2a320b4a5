"""Django's test runner runs these modules inside Horizon's environment
(``tests/functional/horizon/test_views.py``); pytest in the product's venv, which has no
Horizon, leaves them alone."""

collect_ignore_glob = ["*.py"]
