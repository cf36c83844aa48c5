"""Identity's writes: leavers (``leavers``), SCIM provisioning (``provisioning``), group pushes
(``groups``) and sign-in records (``sso``)."""
