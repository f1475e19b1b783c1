from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from sendconn.accounts import views as account_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.SignInView.as_view(), name="login"),
    path(
        "oidc/authenticate/",
        login_not_required(account_views.OIDCSignInView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        login_not_required(account_views.OIDCCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("permissions/", include("sendconn.accounts.urls")),
    path("connectors/", include("sendconn.connectors.urls")),
    path("", include("sendconn.verification.urls")),
    path("", include("sendconn.ops.urls")),
    path("", include("sendconn.observability.urls")),
]

handler403 = "sendconn.accounts.views.permission_denied"
handler404 = "sendconn.accounts.views.page_not_found"
handler500 = "sendconn.accounts.views.server_error"
