from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(use_regex_path=True)
router.trailing_slash = "/?"
router.register("proposals", api.ProposalViewSet, basename="forum-proposal")
router.register("register", api.RegisterViewSet, basename="forum-register")
router.register("inbound", api.InboundViewSet, basename="forum-inbound")
router.register("matches", api.MatchViewSet, basename="forum-match")
router.register("rereviews", api.ReReviewViewSet, basename="forum-rereview")

urlpatterns = router.urls
