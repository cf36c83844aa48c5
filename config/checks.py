"""Deploy checks of our own, run by ``manage.py check --deploy`` next to Django's."""
from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def signing_key_present(app_configs, **kwargs):
    """With autogeneration off (DEBUG off), the Ed25519 key must already be mounted: a missing one
    would fail the first seal or bundle at run time instead of at deploy time."""
    path = settings.SIGNING_KEY_FILE
    if settings.SIGNING_KEY_AUTOGENERATE or path.is_file():
        return []
    return [Error(f"SIGNING_KEY_FILE {path} does not exist.", hint="Mount the Ed25519 key (PKCS#8 PEM) as a secret.",
                  id="countersign.E001")]
