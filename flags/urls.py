from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import FlagIngestView
from .case_api import CaseViewSet

# The case API is served from here: its answers carry each case's flags (flags.case_api), which cases
# never read. The review actions on a case (claim, decide, …) come with it from reviewapp.cases.api.
router = SimpleRouter(use_regex_path=True)
router.trailing_slash = "/?"  # /api/v1/cases/7/claim and …/claim/ both work
router.register("cases", CaseViewSet, basename="case")

urlpatterns = [
    path("flags/", FlagIngestView.as_view(), name="flags-ingest"),
    *router.urls,
]
