"""Deployment descriptions are current and valid, offline: the Kubernetes manifests
against the Kubernetes schemas (kubernetes-validate bundles them), docker-compose
against the Compose specification's schema (check-jsonschema vendors it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
sys.path.insert(0, str(K8S))
import render  # noqa: E402

MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_manifests_are_rendered_from_the_table() -> None:
    rendered = render.render()
    on_disk = {p.name: p.read_text() for p in K8S.glob("*.yaml")}
    assert on_disk == rendered, "regenerate with: python deploy/k8s/render.py"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_valid_kubernetes(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_every_dataflow_runs_as_a_bytewax_cluster() -> None:
    from dataflows.bootstrap import JOBS

    assert set(render.DATAFLOWS) == set(JOBS)
    votes = list(yaml.safe_load_all((K8S / "dataflow-votes.yaml").read_text()))
    stateful = next(d for d in votes if d["kind"] == "StatefulSet")
    container = stateful["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert stateful["spec"]["replicas"] == render.DATAFLOWS["votes"]
    assert env["BYTEWAX_ADDRESSES"]["value"].count(";") == render.DATAFLOWS["votes"] - 1
    assert '-i "$POD_INDEX"' in container["command"][-1]
    assert stateful["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "recovery"


def test_docker_compose_follows_the_compose_specification() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
