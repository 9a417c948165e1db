from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
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


class LoginView(auth_views.LoginView):
    """Django's login; failed attempts are counted per client and username, per client and per username
    (shared by every web process through Redis), so users behind one proxy do not lock each other out."""

    def post(self, request, *args, **kwargs):
        wait = ratelimit.login_blocked(ratelimit.client_ip(request), request.POST.get("username", ""))
        if wait:
            return ratelimit.too_many("Too many failed login attempts; wait a minute.", wait)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        ratelimit.login_failed(ratelimit.client_ip(self.request), self.request.POST.get("username", ""))
        return super().form_invalid(form)


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
