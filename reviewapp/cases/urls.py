from django.urls import path

from .api import ClaimNextView

# /api/v1/cases/ itself is routed from flags/urls.py (flags.case_api adds each case's flags to
# reviewapp.cases.api.CaseViewSet): cases never read the flags table.
urlpatterns = [
    path("queues/<str:queue>/claim-next", ClaimNextView.as_view(), name="queue-claim-next"),
]
