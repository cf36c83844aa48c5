from django.urls import include, path
from rest_framework.routers import SimpleRouter

from compliance.api import alerts as views, audit_events, audit_proofs, checkpoints, evidence, reconciliation

# SimpleRouter: governance's DefaultRouter already serves the API root at the same prefix.
router = SimpleRouter()
router.register("audit-events", audit_events.AuditEventViewSet, basename="audit-event")
router.register("audit-events", audit_proofs.AuditProofViewSet, basename="audit-event-proof")
router.register("audit", audit_proofs.AuditConsistencyViewSet, basename="audit-tree")
router.register("audit/checkpoints", checkpoints.CheckpointViewSet, basename="audit-checkpoint")
router.register("audit/cosignatures", checkpoints.CosignatureViewSet, basename="audit-cosignature")
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("deployment-reconciliation", reconciliation.DeploymentReconciliationViewSet,
                basename="deployment-reconciliation")
router.register("evidence-exports", evidence.EvidenceExportViewSet, basename="evidence-export")

urlpatterns = [path("", include(router.urls))]
