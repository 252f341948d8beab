from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from reviewapp.core.views import healthz, metrics

urlpatterns = [
    path("", include("reviewapp.core.urls")),
    path("", include("reviewapp.people.urls")),
    path("audit/", include("reviewapp.audit.urls")),
    path("", include("flags.review_urls")),  # the reviewer's pages: reviewapp.cases' and the case workspace
    path("policy/", include("reviewapp.policy.urls")),
    path("outbox/", include("reviewapp.outbox.urls")),
    path("appeals/", include("appeals.urls")),
    path("review/appeals/", include("reviewapp.core.appeal_review_urls")),  # appeals' pages and the two that read flags
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),  # Prometheus (README "Metrics")
    path("api/v1/", include("flags.urls")),
    path("api/v1/", include("reviewapp.cases.urls")),
    path("api/v1/", include("appeals.staff_api_urls")),
    path("api/v1/holder/", include("appeals.api_urls")),
    path("detectors/", include("flags.pages_urls")),
    path("forum/", include("reviewapp.forum.urls")),
    path("api/v1/forum/", include("reviewapp.forum.api_urls")),
    path("compliance/", include("reviewapp.compliance.urls")),
    path("api/v1/compliance/", include("reviewapp.compliance.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's script is served as a file (the split view); its own inline <style> needs style-src relaxed.
    path("api/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
]
# The project's own error pages, also with DEBUG on (reviewapp/core/error_pages.py).
handler400 = "reviewapp.core.views.bad_request"
handler403 = "reviewapp.core.views.permission_denied"
handler404 = "reviewapp.core.views.not_found"
handler500 = "reviewapp.core.views.server_error"
