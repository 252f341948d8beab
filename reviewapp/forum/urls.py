from django.urls import path

from . import views

app_name = "forum"

urlpatterns = [
    path("shares/", views.share_list, name="shares"),
    path("shares/<int:pk>/", views.share_detail, name="share"),
    path("shares/<int:pk>/approve/", views.share_approve_view, name="approve"),
    path("shares/<int:pk>/reject/", views.share_reject_view, name="reject"),
    path("shares/<int:pk>/narrow/", views.share_narrow_view, name="narrow"),
    path("shares/<int:pk>/include/", views.share_include_view, name="include"),
    path("shares/<int:pk>/withdraw/", views.share_withdraw_view, name="withdraw"),
    path("propose/<str:kind>/<int:pk>/", views.propose, name="propose"),
    path("register/", views.register, name="register"),
    path("inbound/", views.inbound, name="inbound"),
    path("inbound/<int:pk>/feedback/", views.feedback, name="feedback"),
    path("pushes/", views.push_list, name="pushes"),
    path("withdrawals/", views.withdrawal_list, name="withdrawals"),
    path("matches/", views.match_list, name="matches"),
    path("rereviews/", views.rereviews, name="rereviews"),
    path("rereviews/<int:pk>/done/", views.rereview_done_view, name="rereview-done"),
    path("extension-definitions.json", views.extensions_json, name="extensions"),
]
