"""WSGI entry point for gunicorn. Defaults to production settings; `make run` selects dev settings."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings.production")

application = get_wsgi_application()
