"""Signals governance sends for layers above it to act on in the same transaction."""
from django.dispatch import Signal

# sender=the user model; kwargs: user, actor, source ("admin"), at. Sent inside the transaction that
# disabled the account (the account control's change); identity's leaver service ends the rest.
account_deactivated = Signal()
