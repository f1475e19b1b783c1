from django.shortcuts import redirect, render


def home(request):
    return redirect("ops:dashboard")


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)
