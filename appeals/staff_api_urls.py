"""Routes of the staff appeals API, under /api/v1/ (the holder's API lives under /api/v1/holder/)."""

from rest_framework.routers import SimpleRouter

from .staff_api import AppealReviewViewSet

router = SimpleRouter(use_regex_path=True)
router.trailing_slash = "/?"  # /api/v1/appeals/7/claim and …/claim/ both work
router.register("appeals", AppealReviewViewSet, basename="staff-appeal")
urlpatterns = router.urls
