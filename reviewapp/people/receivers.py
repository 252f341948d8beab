"""Django's sign-in signals are the seam through which every login, logout and failed login is audited.

Each receiver only parses the request and calls one service.
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from . import services
from .addresses import client_ip


def _on_login(sender, request, user, **kwargs) -> None:
    services.session_login_record(user=user, ip=client_ip(request))


def _on_logout(sender, request, user, **kwargs) -> None:
    services.session_logout_record(user=user, ip=client_ip(request))


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    services.session_login_failed_record(username=str(credentials.get("username", "")), ip=client_ip(request))


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="people.audit_login")
    user_logged_out.connect(_on_logout, dispatch_uid="people.audit_logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="people.audit_login_failed")
