"""The SCIM bearer token is a governed credential: an API key of a service account (hashed,
expiring, revocable by an administrator, every use touching ``last_used_at``), marked as the
provider's by a ``ProvisioningCredential``. Issued by an operator (``manage.py create_scim_token``)."""
from django.contrib.auth import get_user_model
from django.db import transaction

import audit
from governance.services import api_token_create
from identity.models import ProvisioningCredential


@transaction.atomic
def provisioning_credential_create(*, name: str, expires_days: int | None = None, source: str = "") -> tuple[ProvisioningCredential, str]:
    users = get_user_model()
    account = users.objects.filter(username=f"scim-{name}").first()
    if account is None:
        account = users(username=f"scim-{name}", first_name="SCIM", last_name=name)
        account.set_unusable_password()
        account._countersign_control_change = True  # recorded below
        account.save()
    token, key = api_token_create(actor=None, user=account, name=f"SCIM {name}", expires_days=expires_days,
                                  source=source or "create_scim_token")
    credential = ProvisioningCredential.objects.create(name=f"{name}-{token.pk}", token=token)
    audit.record("scim.credential_created", actor=None, target=credential,
                 data={"name": credential.name, "account": account.username, "expires_at": token.expires_at,
                       "source": source or "create_scim_token"})
    return credential, key
