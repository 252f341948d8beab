"""reviewapp: the Django project and the case-management core."""

from .celery import app as celery_app

__all__ = ("celery_app",)
