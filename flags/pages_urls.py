from django.urls import path

from . import pages

app_name = "detectors"

urlpatterns = [
    path("", pages.detector_list, name="list"),
    path("new", pages.detector_create, name="create"),
    path("<int:pk>/active", pages.detector_active, name="active"),
    path("<int:pk>/tokens/new", pages.token_create, name="token-create"),
    path("tokens/<int:pk>/revoke", pages.token_revoke, name="token-revoke"),
    path("tokens/<int:pk>/rotate", pages.token_rotate, name="token-rotate"),
]
