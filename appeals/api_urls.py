from django.urls import re_path

from . import api

app_name = "holder_api"

# Mounted at /api/v1/holder/ (reviewapp/urls.py); a trailing slash is optional, as in the case API.
urlpatterns = [
    re_path(r"^decisions/?$", api.HolderDecisionList.as_view(), name="decisions"),
    re_path(r"^appeals/?$", api.HolderAppealList.as_view(), name="appeals"),
    re_path(r"^appeals/(?P<pk>[0-9]+)/?$", api.HolderAppealDetail.as_view(), name="appeal"),
    re_path(r"^appeals/(?P<pk>[0-9]+)/messages/?$", api.HolderAppealMessages.as_view(),
            name="appeal-messages"),
]
