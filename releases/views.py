from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from governance.selectors import effective_duties


@login_required
def dashboard(request):
    return render(request, "releases/dashboard.html", {"duties": effective_duties(request.user)})
