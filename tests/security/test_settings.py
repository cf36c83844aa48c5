"""Hardened settings (issue 7.3): ``check --deploy`` is clean with production settings, production
reads its secrets only from the environment and refuses to start without them, and sessions end
with the browser and after eight hours at most."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "countersign-demo"


@pytest.fixture
def production_env(tmp_path):
    """A production environment: DEBUG off, secrets from variables, a mounted signing key, and
    nothing inherited from the developer's shell (no DATABASE_URL, no broker)."""
    key = tmp_path / "signing_key.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "countersign.example.com",
        "SIGNING_KEY_FILE": str(key),
        "COUNTERSIGN_VAR_DIR": str(tmp_path / "var"),
    }


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings(production_env):
    result = manage(production_env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_fails_when_the_signing_key_is_not_mounted(production_env, tmp_path):
    production_env["SIGNING_KEY_FILE"] = str(tmp_path / "missing.pem")

    result = manage(production_env, "check", "--deploy")

    assert result.returncode != 0
    assert "countersign.E001" in result.stderr


def test_debug_off_without_a_secret_key_refuses_to_start(production_env):
    del production_env["SECRET_KEY"]

    result = manage(production_env, "check")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    # ...and no key was quietly generated into var/ instead.
    assert not (Path(production_env["COUNTERSIGN_VAR_DIR"]) / "secret_key").exists()


def test_debug_off_with_a_short_secret_key_refuses_to_start(production_env):
    production_env["SECRET_KEY"] = "short-but-not-empty"

    result = manage(production_env, "check")

    assert result.returncode != 0
    assert "at least 50 random characters" in result.stderr


def test_production_reads_its_secrets_and_shared_cache_from_the_environment(production_env):
    production_env.update(
        DATABASE_URL="postgres://countersign:db-secret@db.internal:5432/countersign",
        CACHE_URL="redis://cache.internal:6379/3",
        THROTTLE_USER_RATE="off",
        THROTTLE_ANON_RATE="30/min",
    )
    script = (
        "import json, os; from django.conf import settings as s; print(json.dumps({"
        "'secret_from_env': s.SECRET_KEY == os.environ['SECRET_KEY'],"
        "'db': [s.DATABASES['default'][k] for k in ('HOST', 'PASSWORD', 'NAME')],"
        "'signing_key': str(s.SIGNING_KEY_FILE), 'autogenerate': s.SIGNING_KEY_AUTOGENERATE,"
        "'cache': [s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION']],"
        "'throttles': s.COUNTERSIGN_THROTTLE_RATES, 'hsts': s.SECURE_HSTS_SECONDS,"
        "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'secure_cookies': [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],"
        "'api_docs': s.API_DOCS}))"
    )

    result = manage(production_env, "shell", "-c", script)

    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["secret_from_env"] is True
    assert facts["db"] == ["db.internal", "db-secret", "countersign"]
    assert facts["signing_key"] == production_env["SIGNING_KEY_FILE"] and facts["autogenerate"] is False
    assert facts["cache"] == ["django.core.cache.backends.redis.RedisCache", "redis://cache.internal:6379/3"]
    assert facts["throttles"] == {"user": None, "anon": "30/min"}
    assert facts["hsts"] >= 31536000 and facts["ssl_redirect"] is True
    assert facts["secure_cookies"] == [True, True]
    assert facts["api_docs"] is True  # Swagger UI is our own static files (drf-spectacular-sidecar)
    assert not (Path(production_env["COUNTERSIGN_VAR_DIR"]) / "secret_key").exists()


def test_a_session_ends_with_the_browser_and_after_eight_hours(demo, client):
    response = client.post("/accounts/login/", {"username": "dev", "password": PASSWORD})

    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # a browser-session cookie
    assert cookie["httponly"] is True
    assert client.session.get_expire_at_browser_close() is True
    assert client.session.get_expiry_age() == 8 * 60 * 60  # the server forgets it after 8 h anyway
