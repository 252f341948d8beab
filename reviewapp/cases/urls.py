from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import CaseViewSet, ClaimNextView

router = SimpleRouter(use_regex_path=True)
router.trailing_slash = "/?"  # /api/v1/cases/7/claim and …/claim/ both work
router.register("cases", CaseViewSet, basename="case")
urlpatterns = [
    *router.urls,
    path("queues/<str:queue>/claim-next", ClaimNextView.as_view(), name="queue-claim-next"),
]
