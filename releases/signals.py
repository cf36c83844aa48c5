"""What releases announces to the apps above it (which releases never imports): sent inside the
service's transaction, so a receiver's writes commit or roll back with the transition itself."""
from django.dispatch import Signal

# kwargs: change_request (approved, re-read), at. Sent when a change request becomes approved.
change_request_approved = Signal()
# kwargs: change_request, deployment, at. Sent when a deployment starts.
deployment_started = Signal()
# kwargs: change_request (re-read), decision ("approved", "rejected", "changes_requested" or
# "cancelled"), at. Sent after every reviewer's decision and every cancellation, whether or not the
# policy is met yet: whoever waits on the change (a deployment job held by a platform) asks again.
change_request_decided = Signal()
