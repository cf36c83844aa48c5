"""DRF throttles whose rates come from ``settings.COUNTERSIGN_THROTTLE_RATES`` at request time
(env THROTTLE_USER_RATE / THROTTLE_ANON_RATE). DRF's own classes copy the rates once, at import,
so a changed setting would never reach them. A rate of None switches that throttle off.

A throttled request gets 429, ``{"detail": ...}`` and a Retry-After header (DRF's handler)."""
from django.conf import settings
from rest_framework import throttling


class _RateFromSettings:
    def get_rate(self):
        return settings.COUNTERSIGN_THROTTLE_RATES.get(self.scope)


class UserRateThrottle(_RateFromSettings, throttling.UserRateThrottle):
    """Per user for authenticated clients (token or session); per IP for the rest."""


class AnonRateThrottle(_RateFromSettings, throttling.AnonRateThrottle):
    """Per client IP for anonymous requests (only the views open to them, e.g. /api/schema/)."""
