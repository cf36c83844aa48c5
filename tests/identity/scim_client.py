"""A SCIM caller as the providers are: a bearer token from ``create_scim_token``'s service, JSON in
and out."""
import json

from django.test import Client

from identity.services.credentials import provisioning_credential_create

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Scim:
    def __init__(self, name="okta"):
        self.credential, self.key = provisioning_credential_create(name=name)
        self.client = Client()

    def call(self, method, path, body=None, **headers):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {self.key}", **headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/scim+json")
        response = getattr(self.client, method.lower())(f"/scim/v2{path}", **kwargs)
        response.body = json.loads(response.content) if response.content else None
        return response

    def get(self, path, **h):
        return self.call("GET", path, **h)

    def post(self, path, body, **h):
        return self.call("POST", path, body, **h)

    def put(self, path, body, **h):
        return self.call("PUT", path, body, **h)

    def patch(self, path, operations, **h):
        return self.call("PATCH", path, {"schemas": [PATCH_OP], "Operations": operations}, **h)

    def delete(self, path, **h):
        return self.call("DELETE", path, **h)
