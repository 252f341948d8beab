"""The console's API under /api/v1/compliance/, one api_urls module per area."""

from .access import api_urls as access
from .audit_explorer import api_urls as audit_explorer
from .exports import api_urls as exports
from .quality import api_urls as quality
from .records import api_urls as records
from .retention import api_urls as retention
from .transparency import api_urls as transparency
from .verification import api_urls as verification

urlpatterns = [
    *records.urlpatterns,
    *audit_explorer.urlpatterns,
    *verification.urlpatterns,
    *access.urlpatterns,
    *quality.urlpatterns,
    *exports.urlpatterns,
    *transparency.urlpatterns,
    *retention.urlpatterns,
]
