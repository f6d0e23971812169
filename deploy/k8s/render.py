"""Renders the Kubernetes manifests in this folder from one table of processes:
`python deploy/k8s/render.py` rewrites them (a test checks they are current and valid
against the Kubernetes schemas). Apply with `kubectl apply -k deploy/k8s` after
creating the `agora-secrets` Secret (PG_PASSWORD, JWT_SECRET, S3_ACCESS_KEY,
S3_SECRET_KEY, SMTP_USER, SMTP_PASSWORD, EMAIL_ENCRYPTION_KEY, EMAIL_HASH_KEY,
MEILI_MASTER_KEY) and editing
`config.yaml` for your servers.

- api and ws: Deployments with readiness (/readyz, /healthz) and liveness probes,
  Services, and HorizontalPodAutoscalers on CPU.
- relay: one Deployment (two relays take turns on the outbox lock, so two are safe).
- each dataflow: a StatefulSet running a Bytewax cluster of N processes (`-i` from the
  pod's ordinal, `-a` over a headless Service), its recovery store on a volume.
- migrate: a Job that applies migrations and creates topics before a rollout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
NAMESPACE = "agora"
IMAGE = "agora:latest"
BYTEWAX_PORT = 2101
# dataflow -> processes in its Bytewax cluster (scale with the topic's partitions)
DATAFLOWS = {
    "content": 2,
    "votes": 3,
    "ranking": 2,
    "karma": 2,
    "mentions": 1,
    "media": 1,
    "spam": 2,
    "search": 1,
}
Manifest = dict[str, Any]


def meta(name: str, **labels: str) -> Manifest:
    return {"name": name, "namespace": NAMESPACE, "labels": {"app": name, **labels}}


def env_from() -> list[Manifest]:
    return [{"configMapRef": {"name": "agora-config"}}, {"secretRef": {"name": "agora-secrets"}}]


def container(name: str, command: list[str], **extra: Any) -> Manifest:
    return {
        "name": name,
        "image": IMAGE,
        "command": command,
        "envFrom": env_from(),
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        **extra,
    }


def http_probe(path: str, port: int, period: int) -> Manifest:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period}


def web(name: str, command: list[str], port: int, ready: str, replicas: int) -> list[Manifest]:
    spec = container(
        name,
        command,
        ports=[{"containerPort": port, "name": "http"}],
        readinessProbe=http_probe(ready, port, 5),
        livenessProbe=http_probe("/healthz", port, 10),
    )
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(name),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [spec]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(name),
            "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": "http"}]},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta(name),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": replicas,
                "maxReplicas": replicas * 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    ]


def dataflow(name: str, processes: int) -> list[Manifest]:
    full = f"dataflow-{name}"
    headless = f"{full}-cluster"
    addresses = ";".join(
        f"{full}-{i}.{headless}.{NAMESPACE}.svc.cluster.local:{BYTEWAX_PORT}"
        for i in range(processes)
    )
    run = (
        f'exec python -m dataflows run {name} -i "$POD_INDEX" -a "$BYTEWAX_ADDRESSES"'
        if processes > 1
        else f"exec python -m dataflows run {name}"
    )
    spec = container(
        full,
        ["sh", "-c", run],
        env=[
            {
                "name": "POD_INDEX",
                "valueFrom": {
                    "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
                },
            },
            {"name": "BYTEWAX_ADDRESSES", "value": addresses},
            {"name": "RECOVERY_ROOT", "value": "/recovery"},
        ],
        ports=[{"containerPort": BYTEWAX_PORT, "name": "bytewax"}],
        volumeMounts=[{"name": "recovery", "mountPath": "/recovery"}],
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(headless),
            "spec": {
                "clusterIP": "None",
                "selector": {"app": full},
                "ports": [{"port": BYTEWAX_PORT, "name": "bytewax"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta(full),
            "spec": {
                "serviceName": headless,
                "replicas": processes,
                # A Bytewax cluster starts and stops as a whole.
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": full}},
                "template": {
                    "metadata": {"labels": {"app": full}},
                    "spec": {"terminationGracePeriodSeconds": 30, "containers": [spec]},
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "recovery"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "5Gi"}},
                        },
                    }
                ],
            },
        },
    ]


def manifests() -> dict[str, list[Manifest]]:
    files: dict[str, list[Manifest]] = {
        "namespace.yaml": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        ],
        "config.yaml": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta("agora-config"),
                "data": {
                    "PG_HOST": "postgres-identity",
                    "PG_PORT": "5432",
                    "PG_USER": "platform",
                    "PG_IDENTITY_DB": "identity",
                    "PG_SHARD_DBS": "posts_shard_0,posts_shard_1",
                    "REDIS_URL": "redis://redis:6379/0",
                    "KAFKA_BOOTSTRAP": "kafka:9092",
                    "CQL_HOSTS": "scylla",
                    "CQL_PORT": "9042",
                    "CQL_KEYSPACE": "platform",
                    "MEILI_URL": "http://meilisearch:7700",
                    "S3_ENDPOINT": "http://minio:9000",
                    "S3_BUCKET": "agora-media",
                    "S3_PUBLIC_URL": "https://media.example.com/agora-media",
                    "SMTP_HOST": "smtp.example.com",
                    "SMTP_PORT": "587",
                    "SMTP_STARTTLS": "true",
                    "SMTP_FROM": "no-reply@example.com",
                    "REQUIRE_VERIFIED_EMAIL": "true",
                    # Traces go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set; 1 % of
                    # new traces, and every trace a caller started, are kept: tracing
                    # every request costs the API about 70 % more CPU per vote.
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0.01",
                },
            }
        ],
        "migrate.yaml": [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta("migrate"),
                "spec": {
                    "backoffLimit": 3,
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [
                                container(
                                    "migrate",
                                    [
                                        "sh",
                                        "-c",
                                        "python -m ops migrate && python -m ops topics ensure",
                                    ],
                                )
                            ],
                        }
                    },
                },
            }
        ],
        "api.yaml": web(
            "api", ["python", "-m", "api", "--port", "8000", "--workers", "2"], 8000, "/readyz", 2
        ),
        "ws.yaml": web("ws", ["python", "-m", "ws", "--port", "8001"], 8001, "/healthz", 2),
        "relay.yaml": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta("relay"),
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "relay"}},
                    "template": {
                        "metadata": {"labels": {"app": "relay"}},
                        "spec": {"containers": [container("relay", ["python", "-m", "api.relay"])]},
                    },
                },
            }
        ],
    }
    for name, processes in DATAFLOWS.items():
        files[f"dataflow-{name}.yaml"] = dataflow(name, processes)
    return files


def kustomization(files: list[str]) -> Manifest:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }


def render() -> dict[str, str]:
    out = {
        name: "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in docs)
        for name, docs in manifests().items()
    }
    out["kustomization.yaml"] = yaml.safe_dump(kustomization(list(out)), sort_keys=False)
    return out


def main() -> None:
    for name, text in render().items():
        (HERE / name).write_text(text)
    print(f"wrote {len(render())} files to deploy/k8s", file=sys.stderr)


if __name__ == "__main__":
    main()
