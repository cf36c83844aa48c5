"""Deployment reconciliation (SOX ITGC-CM, completeness of the change population): every
production deployment the platforms report (GitHub and GitLab deployment events,
``deployment-reports/``) with the approved change request it was matched to, or the exception.
The matching rule has one home, ``integrations.reconciliation`` (docs/rules.md L5); this
module only says which rows and how they are written."""
from django.db.models import QuerySet

from compliance.evidence.datasets.base import Context, Dataset
from compliance.evidence.writer import iso
from integrations import reconciliation


def _queryset(ctx: Context) -> QuerySet:
    return reconciliation.tuples(reconciliation.production().filter(ctx.in_period("reported_at")))


def _rows(ctx: Context, batch: list[tuple]) -> list[dict]:
    return reconciliation.rows(batch, iso=iso)


DEPLOYMENT_RECONCILIATION = Dataset(
    name="deployment_reconciliation",
    title="Deployment reconciliation (platform-reported production deployments)",
    population="Every deployment a platform or deploy tool reported (GitHub deployment and deployment_status "
               "events, GitLab Deployment Hook events, deployment-reports/ calls) to a production-tier environment, "
               "or to one the platform itself calls production, whose reported_at is in the period. Each is matched "
               "to the change request of its environment naming the same commit or artifact and approved at that "
               "time; the rule is docs/rules.md L5.",
    columns=reconciliation.COLUMNS,
    queryset=_queryset,
    rows=_rows,
    exceptions={code: (lambda c: lambda r: c in r["findings"])(code) for code in reconciliation.EXCEPTIONS},
)
