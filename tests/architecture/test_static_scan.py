"""The suite reuses WhiteNoise's scan of the static files (conftest.py, ``_scan_static_files_once``):
a reused scan must be what a fresh one finds, and a change of WhiteNoise's settings must scan again."""
from django.test import Client, override_settings
from whitenoise.base import WhiteNoise
from whitenoise.middleware import WhiteNoiseMiddleware


def _served(files: dict) -> dict:
    """What each URL serves: per encoding, the file and its headers."""
    return {url: [(pattern.pattern, path, headers) for pattern, path, headers in static.alternatives]
            for url, static in files.items()}


def _cache_control(files: dict, url: str) -> str:
    return dict(files[url].alternatives[0][2])["Cache-Control"]


def _fresh() -> dict:
    middleware = WhiteNoiseMiddleware.__new__(WhiteNoiseMiddleware)
    reuse = WhiteNoise.update_files_dictionary
    WhiteNoise.update_files_dictionary = reuse.uncached
    try:
        middleware.__init__(get_response=None)
    finally:
        WhiteNoise.update_files_dictionary = reuse
    return middleware.files


def test_a_reused_scan_is_what_a_fresh_scan_finds():
    first, second = WhiteNoiseMiddleware(get_response=None), WhiteNoiseMiddleware(get_response=None)
    fresh = _fresh()
    assert len(fresh) > 100  # the collected static files (make test runs collectstatic first)
    assert _served(first.files) == _served(second.files) == _served(fresh)
    assert first.files is not second.files  # each middleware has its own dictionary


def test_other_whitenoise_settings_scan_again():
    before = WhiteNoiseMiddleware(get_response=None).files
    with override_settings(WHITENOISE_MAX_AGE=12345):
        after = WhiteNoiseMiddleware(get_response=None).files
    url = next(u for u in after if u.endswith("countersign.css"))
    assert _cache_control(after, url) == "max-age=12345, public"
    assert _cache_control(before, url) != _cache_control(after, url)


def test_static_files_are_still_served_to_a_test_client():
    response = Client().get("/static/countersign.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)
