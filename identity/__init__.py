"""People from the identity provider (issue 17): SCIM 2.0 provisioning, OpenID Connect sign-in and
step-up at sign-off, and leavers, who lose everything at once. Sits above releases (a leaver's
pending changes are withdrawn) and below compliance (whose evidence reads its events)."""
