from django.urls import path

from . import views

app_name = "people"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", views.password_change, name="password-change"),
    path("staff/", views.staff_list, name="staff"),
    path("staff/new", views.staff_create, name="staff-create"),
    path("staff/<int:pk>/role", views.staff_role, name="staff-role"),
    path("staff/<int:pk>/active", views.staff_active, name="staff-active"),
    path("staff/password", views.staff_password_issue, name="staff-password"),
    path("staff/unlock", views.staff_sign_in_unlock, name="staff-unlock"),
    path("api-tokens/", views.api_tokens, name="api-tokens"),
    path("api-tokens/new", views.api_token_create, name="api-token-create"),
    path("api-tokens/<int:pk>/revoke", views.api_token_revoke, name="api-token-revoke"),
]
