from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from webapp import ratelimit


def signup(request):
    if not settings.SIGNUP_OPEN:
        return render(request, "registration/signup_closed.html", status=403)
    form = UserCreationForm(request.POST or None)
    if request.method == "POST":
        if not ratelimit.allow(f"signup:{ratelimit.client_ip(request)}", settings.LOGINS_PER_MINUTE):
            return HttpResponse("Too many attempts; wait a minute.", status=429)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's login, rate-limited per address and per username through the shared cache."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "").lower()[:150]
        ip = ratelimit.client_ip(request)
        if not (ratelimit.allow(f"login:{ip}", settings.LOGINS_PER_MINUTE)
                and ratelimit.allow(f"login:{username}", settings.LOGINS_PER_MINUTE)):
            return HttpResponse("Too many login attempts; wait a minute.", status=429)
        return super().post(request, *args, **kwargs)


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
