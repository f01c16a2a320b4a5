"""protector-api for any WSGI server: ``site_recovery.webhook.wsgi:application``.

The configuration file is ``$SITE_RECOVERY_CONFIG`` (default
``/etc/site-recovery/protector.yaml``). Each worker process that imports this module
builds one application; the background duties are ``protector-engine``'s, never a
worker's. Under several processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by them (see docs/guides/01-deploy.md).
"""

from .app import load_application

application = load_application()
