import functools

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from webapp import ratelimit


def signup(request):
    if not settings.SIGNUP_OPEN:
        return render(request, "registration/signup_closed.html", status=403)
    form = UserCreationForm(request.POST or None)
    if request.method == "POST":
        wait = ratelimit.hit(f"signup:{ratelimit.client_ip(request)}", settings.LOGINS_PER_MINUTE)
        if wait:
            return ratelimit.too_many("Too many attempts; wait a minute.", wait)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            token = Token.objects.create(user=user)
            messages.success(
                request,
                format_html(
                    'Welcome, {}. Your API token is <code id="new-token">{}</code> (also on the '
                    '<a href="{}">API page</a>; <a href="{}">API docs</a>).',
                    user.username,
                    token.key,
                    reverse("api-token"),
                    reverse("api-docs"),
                ),
            )
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def login_limited(view):
    """A login view refusing a POST from a client whose failed logins for this username (or for any) reached
    their limit: 429 with Retry-After. The failures themselves are counted by ``count_failed_login``."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            wait = ratelimit.login_blocked(ratelimit.client_ip(request), request.POST.get("username", ""))
            if wait:
                return ratelimit.too_many("Too many failed login attempts; wait and try again.", wait)
        return view(request, *args, **kwargs)

    return wrapper


@receiver(user_login_failed)
def count_failed_login(sender, credentials, request=None, **kwargs):
    """Every failed ``authenticate()`` with a request (the site's login, the admin's, the API's token) counts,
    per client (the proxy-aware address) and username."""
    if request is not None:
        ratelimit.login_failed(ratelimit.client_ip(request), str(credentials.get("username", "")))


login_view = login_limited(auth_views.LoginView.as_view())
admin_login = login_limited(admin.site.login)


@login_required
def api_token(request):
    token = Token.objects.filter(user=request.user).first()
    return render(request, "registration/token.html", {"token": token})


@login_required
@require_POST
def api_token_reset(request):
    Token.objects.filter(user=request.user).delete()
    Token.objects.create(user=request.user)
    messages.success(request, "A new API token was made; the old one no longer works.")
    return redirect("api-token")
