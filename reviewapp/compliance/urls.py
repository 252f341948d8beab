"""The console's pages under /compliance/, one urls module per area (each area owns its names, prefixed by it)."""

from . import home
from .access import urls as access
from .audit_explorer import urls as audit_explorer
from .exports import urls as exports
from .quality import urls as quality
from .records import urls as records
from .retention import urls as retention
from .transparency import urls as transparency
from .verification import urls as verification

app_name = "compliance"

urlpatterns = [
    *home.urlpatterns,
    *records.urlpatterns,
    *audit_explorer.urlpatterns,
    *verification.urlpatterns,
    *access.urlpatterns,
    *quality.urlpatterns,
    *exports.urlpatterns,
    *transparency.urlpatterns,
    *retention.urlpatterns,
]
