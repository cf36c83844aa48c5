"""What releases announces to the apps above it (which releases never imports): sent inside the
service's transaction, so a receiver's writes commit or roll back with the transition itself."""
from django.dispatch import Signal

# kwargs: change_request (approved), context (the ``PolicyContext`` the service settled it with:
# approvals, policy and contributors as they stand in this transaction), at. Sent when a change
# request becomes approved.
change_request_approved = Signal()
# kwargs: change_request, deployment, context (as above, the one the deployment was decided
# with), at. Sent when a deployment starts.
deployment_started = Signal()
# kwargs: actor, environment, artifact, source, change_request (the covering one the reporter may
# see, or None), at. Sent for every deployment-reports/ call (E2): what a deploy tool says it did.
deployment_reported = Signal()
# kwargs: change_request (re-read), decision ("approved", "rejected", "changes_requested" or
# "cancelled"), at. Sent when a change request is decided: an approval (partial or
# the last one needed), a rejection, changes requested, a cancellation, or the policy's own
# approval on submit. Receivers re-evaluate what waits on the change (platform deployment approvals).
change_request_decided = Signal()
