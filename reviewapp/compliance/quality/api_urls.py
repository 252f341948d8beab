"""The quality API under /api/v1/compliance/ (names compliance:quality-…, compliance:calibration-api)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import AgreementView, CalibrationView, DisagreementViewSet, SampleViewSet, SecondLookViewSet

router = SimpleRouter()
router.register("quality/samples", SampleViewSet, basename="quality-api-sample")
router.register("quality/disagreements", DisagreementViewSet, basename="quality-api-disagreement")
router.register("quality/second-looks", SecondLookViewSet, basename="quality-api-second-look")

urlpatterns = [
    path("quality/agreement/", AgreementView.as_view(), name="quality-api-agreement"),
    path("calibration/", CalibrationView.as_view(), name="calibration-api"),
    *router.urls,
]
