"""The README's deployment step, taken from README.md itself and run with bash, curl and jq against
a live server (issue 19 item 5): an approved change deploys once; a second run started at the same
time exits non-zero without deploying; a refusal, a bad key or a wrong id prints the server's
message and exits non-zero; deploy.sh never runs unless the deployment start answered 201."""
import os
import re
import shutil
import subprocess
import time

import pytest
from django.conf import settings

from governance import services as governance_services
from releases import services
from releases.models import ChangeRequest, Deployment
from tests.releases.stories import new_artifact

SECTION = "### A deployment step for your pipeline"
DEPLOY_SH = '#!/usr/bin/env bash\necho "$1" >> "$DEPLOY_LOG"\n[ -z "${HOLD:-}" ] || { touch "$HOLD.started"; ' \
            'while [ ! -e "$HOLD.release" ]; do sleep 0.05; done; }\nexit "${DEPLOY_EXIT:-0}"\n'
# A curl that, after the gate answered, says so and waits: it holds a run between its gate and its
# deployment start, where the second run was when the first one started.
SLOW_CURL = '#!/usr/bin/env bash\n{real} "$@"; rc=$?\ncase "$*" in *"/gate/"*) touch "$GATED"; ' \
            'while [ ! -e "$GO_ON" ]; do sleep 0.05; done;; esac\nexit $rc\n'


def readme_step() -> str:
    readme = (settings.BASE_DIR / "README.md").read_text()
    section = readme[readme.index(SECTION):]
    section = section[:section.index("\n## ")]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section shows one bash step"
    return blocks[0]


@pytest.fixture
def pipeline(demo, live_server, tmp_path):
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"the README's step needs {tool}"
    _, key = governance_services.api_token_create(actor=demo.ops, user=demo.ops, name="ci")
    step = tmp_path / "step.sh"
    step.write_text(readme_step())
    log = tmp_path / "deploys.log"
    log.touch()

    def start(cr_id, *, token=key, workdir="run", path_first=None, **env) -> subprocess.Popen:
        cwd = tmp_path / workdir
        cwd.mkdir(exist_ok=True)
        (cwd / "deploy.sh").write_text(DEPLOY_SH)
        (cwd / "deploy.sh").chmod(0o755)
        variables = {"PATH": f"{path_first + ':' if path_first else ''}{os.environ['PATH']}", "HOME": str(tmp_path),
                     "COUNTERSIGN_URL": live_server.url, "COUNTERSIGN_TOKEN": token, "CR": str(cr_id),
                     "PIPELINE_URL": "https://ci.example.com/payments/runs/7", "DEPLOY_LOG": str(log), **env}
        variables = {k: v for k, v in variables.items() if v is not None}
        return subprocess.Popen(["bash", str(step)], cwd=cwd, env=variables, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def run(cr_id, **kwargs) -> subprocess.CompletedProcess:
        process = start(cr_id, **kwargs)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def deploys() -> list[str]:
        return log.read_text().splitlines()

    return type("Pipeline", (), {"start": staticmethod(start), "run": staticmethod(run),
                                 "deploys": staticmethod(deploys), "tmp": tmp_path})


def approved(demo) -> ChangeRequest:
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                        title="Retry card authorisation on timeout", artifact=new_artifact())
    cr = services.change_request_submit(actor=demo.dev, change_request=cr)
    cr = services.change_request_approve(actor=demo.rev, change_request=cr)
    assert cr.state == ChangeRequest.State.APPROVED
    return cr


def wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_an_approved_change_deploys_once_and_is_reported(demo, pipeline):
    cr = approved(demo)

    done = pipeline.run(cr.pk)

    assert done.returncode == 0, done.stdout + done.stderr
    assert pipeline.deploys() == [cr.artifact]
    assert "Reported succeeded to Countersign." in done.stdout
    deployment = Deployment.objects.get(change_request=cr)
    assert deployment.state == Deployment.State.SUCCEEDED
    assert deployment.pipeline_url == "https://ci.example.com/payments/runs/7"


def test_a_failed_deploy_is_reported_and_fails_the_step(demo, pipeline):
    cr = approved(demo)

    done = pipeline.run(cr.pk, DEPLOY_EXIT="3")

    assert done.returncode != 0
    assert pipeline.deploys() == [cr.artifact]
    assert Deployment.objects.get(change_request=cr).state == Deployment.State.FAILED


def test_a_second_run_started_at_the_same_time_exits_without_deploying(demo, pipeline):
    """The issue's race: both runs passed the gate; the first starts the deployment; the second's
    start answers 409. The second must print it and stop, never deploy."""
    cr = approved(demo)
    slow_bin = pipeline.tmp / "slow-bin"
    slow_bin.mkdir()
    (slow_bin / "curl").write_text(SLOW_CURL.format(real=shutil.which("curl")))
    (slow_bin / "curl").chmod(0o755)
    hold, gated = pipeline.tmp / "first", pipeline.tmp / "second.gated"

    second = pipeline.start(cr.pk, workdir="second", path_first=str(slow_bin), GATED=str(gated),
                            GO_ON=f"{hold}.started")
    wait_for(gated)  # the second run's gate said yes; it waits before starting the deployment
    first = pipeline.start(cr.pk, workdir="first", HOLD=str(hold))
    out, err = second.communicate(timeout=60)  # the first is deploying (held in deploy.sh) meanwhile
    deploys_while_first_holds = pipeline.deploys()
    (pipeline.tmp / "first.release").touch()
    first_out, first_err = first.communicate(timeout=60)

    assert second.returncode != 0, out + err
    assert "Countersign answered HTTP 409 to POST" in err and "invalid_state" in err
    assert deploys_while_first_holds == [cr.artifact]  # the first run's, only
    assert first.returncode == 0, first_out + first_err
    assert pipeline.deploys() == [cr.artifact]
    assert Deployment.objects.filter(change_request=cr).count() == 1


def test_a_refused_change_prints_the_reasons_and_deploys_nothing(demo, pipeline):
    cr = services.change_request_create(actor=demo.dev, team=demo.payments, environment=demo.staging,
                                        title="Not reviewed yet", artifact=new_artifact())
    cr = services.change_request_submit(actor=demo.dev, change_request=cr)

    done = pipeline.run(cr.pk)

    assert done.returncode != 0
    assert f"Countersign does not allow deploying change request {cr.pk}:" in done.stderr
    assert "  - not_approved: " in done.stderr
    assert pipeline.deploys() == []
    assert not Deployment.objects.filter(change_request=cr).exists()


@pytest.mark.parametrize("case", ["bad key", "unknown change", "server down", "no pipeline url"])
def test_every_other_failure_prints_why_and_deploys_nothing(demo, pipeline, case):
    cr = approved(demo)
    kwargs = {
        "bad key": {"token": "not-a-key"},
        "unknown change": {},
        "server down": {"COUNTERSIGN_URL": "http://127.0.0.1:9"},
        "no pipeline url": {"PIPELINE_URL": None},
    }[case]
    done = pipeline.run(999999 if case == "unknown change" else cr.pk, **kwargs)

    assert done.returncode != 0
    expected = {
        "bad key": "Countersign answered HTTP 401 to GET",
        "unknown change": "Countersign answered HTTP 404 to GET",
        "server down": "Countersign did not answer GET",
        "no pipeline url": "set PIPELINE_URL",
    }[case]
    assert expected in done.stderr, done.stderr
    if case in ("bad key", "unknown change"):
        assert '"detail"' in done.stderr  # the server's own message
    assert pipeline.deploys() == []
    assert not Deployment.objects.filter(change_request=cr).exists()


def test_docs_ci_pipeline_shows_the_same_step():
    doc = (settings.BASE_DIR / "docs" / "ci-pipeline.md").read_text()
    assert readme_step() in re.findall(r"```bash\n(.*?)```", doc, re.S)
    for name in ("COUNTERSIGN_URL", "COUNTERSIGN_TOKEN", "CR", "PIPELINE_URL"):
        assert f"| `{name}` |" in doc
        assert f"| `{name}` |" in (settings.BASE_DIR / "README.md").read_text()
