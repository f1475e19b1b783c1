from django.shortcuts import redirect, render


def home(request):
    # The dashboard arrives with the operations console; until then the connector list is home.
    return redirect("connectors:list")


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)
