"""Response headers that depend on the view: pages and answers that show evidence or personal data are
never stored by a browser or a shared cache (``Cache-Control: no-store``)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.conf import settings
from django.utils.cache import patch_cache_control


class NoStoreMiddleware:
    """``Cache-Control: no-store, private`` on the responses of the views named in ``settings.NO_STORE_VIEWS``
    (view names, ``namespace:name``, shell-style patterns). Keyed on the view, not the URL, so a moved path
    keeps its header; a view that sets its own Cache-Control keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.patterns = tuple(settings.NO_STORE_VIEWS)

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and not response.has_header("Cache-Control") and any(
                fnmatchcase(match.view_name, pattern) for pattern in self.patterns):
            patch_cache_control(response, no_store=True, private=True)
        return response
