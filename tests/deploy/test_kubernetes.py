"""The Kubernetes manifests (deploy/kubernetes, a kustomize base), checked offline.

Every file is validated against the Kubernetes schemas that kubernetes-validate ships
(strict: unknown fields fail), scanned with checkov (non-root, read-only root
filesystem, resources, probes, ...: no failed check, and every skip carries its reason),
and held to what the app needs: the probes' paths exist, the settings they set are
settings the app reads, the secrets the pods name exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

K8S = ROOT / "deploy" / "kubernetes"
BIN = Path(sys.executable).parent
CHECKOV = Path(os.environ.get("CHECKOV_BIN", ROOT / ".tools" / "checkov" / "bin" / "checkov"))
KUBERNETES_VERSION = "1.33.0"  # the oldest release the manifests promise to work on


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def documents() -> list[dict]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess:
    tool = BIN / "kubernetes-validate"
    if not tool.exists():
        pytest.fail(f"{tool} is missing: install requirements-dev.txt (scripts/bootstrap.sh --dev)")
    return subprocess.run(
        [str(tool), "--strict", "-k", KUBERNETES_VERSION, *map(str, paths)], capture_output=True, text=True, timeout=120
    )


def checkov(directory: Path) -> dict:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: scripts/bootstrap.sh --dev installs requirements-checkov.txt")
    # Offline: no download of policies or guidelines.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    report["returncode"] = result.returncode
    return report


def test_the_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(path.name for path in manifest_files())
    assert kustomization["namespace"] == "referral"
    kinds = {doc["kind"] for doc in documents()}
    required = {
        "Deployment", "Service", "Ingress", "Job", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "Secret", "ConfigMap",
    }  # fmt: skip
    assert required <= kinds, required - kinds


def test_manifests_match_the_kubernetes_schemas():
    result = kubernetes_validate(*manifest_files())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == len(documents())


def test_the_schema_check_rejects_a_broken_manifest(tmp_path):
    broken = tmp_path / "deployment.yaml"
    deployment = by_kind("Deployment")["referral-app"]
    deployment["spec"]["replicas"] = "three"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/ping"
    broken.write_text(yaml.safe_dump(deployment))
    assert kubernetes_validate(broken).returncode != 0


def test_checkov_finds_no_failure_and_every_skip_has_a_reason():
    report = checkov(K8S)
    results = report["results"]
    failed = [(check["check_id"], check["resource"], check["check_name"]) for check in results["failed_checks"]]
    assert not failed and report["returncode"] == 0, failed
    for check in results.get("skipped_checks", []):
        reason = check["check_result"].get("suppress_comment", "")
        assert reason.strip(), f"{check['check_id']} on {check['resource']} is skipped without a reason"
    passed = {(check["check_id"], check["resource"]) for check in results["passed_checks"]}
    for workload in ("Deployment.referral.referral-app", "Job.referral.referral-migrate", "Deployment.referral.pgbouncer"):
        for check_id in (
            "CKV_K8S_22",  # read-only root filesystem
            "CKV_K8S_23",  # not root (runAsNonRoot)
            "CKV_K8S_40",  # a high UID
            "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13",  # CPU and memory requests and limits
            "CKV_K8S_20",  # no privilege escalation
            "CKV_K8S_37",  # capabilities dropped
        ):  # fmt: skip
            assert (check_id, workload) in passed, (check_id, workload)
    for check_id in ("CKV_K8S_8", "CKV_K8S_9"):  # liveness and readiness probes
        assert (check_id, "Deployment.referral.referral-app") in passed


def test_checkov_finds_what_it_should(tmp_path):
    """The scanner in the test really scans: a root container with no limits fails."""
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: x\nspec:\n"
        "  containers:\n    - name: c\n      image: nginx:latest\n      securityContext:\n        privileged: true\n"
    )
    failed = {check["check_id"] for check in checkov(tmp_path)["results"]["failed_checks"]}
    assert {"CKV_K8S_16", "CKV_K8S_14", "CKV_K8S_22", "CKV_K8S_11"} <= failed, failed


def _containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def test_the_app_pods_as_the_app_expects():
    from referral_app.settings import Settings, environment_name

    deployment = by_kind("Deployment")["referral-app"]
    (app,) = _containers(deployment)
    assert app["args"] == ["serve"] and app["ports"][0]["containerPort"] == 3000
    assert app["readinessProbe"]["httpGet"]["path"] == "/api/health"
    # Liveness needs nothing else: a database outage takes pods out of rotation, it does
    # not restart them (tests/e2e/test_recovery.py shows the app comes back by itself).
    assert app["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert app["startupProbe"]["httpGet"]["path"] == "/ping"
    # The only writable place is /tmp, where the entrypoint puts RUN_DIR.
    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    assert [mount["mountPath"] for mount in app["volumeMounts"]] == ["/tmp"]
    assert 'run_dir="${RUN_DIR:-/tmp/referral}"' in (ROOT / "scripts" / "docker-entrypoint.sh").read_text()

    # Every setting the ConfigMap sets is one the app (or the entrypoint) reads, and the
    # pool keeps within PgBouncer's client limit at the autoscaler's maximum.
    config = by_kind("ConfigMap")["referral-config"]["data"]
    known = {environment_name(field) for field in Settings.model_fields} | {"WORKERS"}
    assert set(config) <= known, set(config) - known
    Settings.model_validate({name.lower(): value for name, value in config.items() if name != "WORKERS"})
    hpa = by_kind("HorizontalPodAutoscaler")["referral-app"]
    per_pod = int(config["WORKERS"]) * (int(config["DB_POOL_SIZE"]) + int(config["DB_MAX_OVERFLOW"]))
    (bouncer,) = _containers(by_kind("Deployment")["pgbouncer"])
    bouncer_env = {item["name"]: item.get("value") for item in bouncer["env"]}
    assert hpa["spec"]["maxReplicas"] * per_pod <= int(bouncer_env["MAX_CLIENT_CONN"])

    # The secrets the pods name are in the Secret; the migration goes to PostgreSQL directly.
    secret = by_kind("Secret")["referral-secrets"]["stringData"]
    for workload in (deployment, by_kind("Job")["referral-migrate"], by_kind("Deployment")["pgbouncer"]):
        for container in _containers(workload):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "referral-secrets" and ref["key"] in secret, ref
    (migrate,) = _containers(by_kind("Job")["referral-migrate"])
    assert migrate["args"] == ["migrate"]
    migrate_url = next(item for item in migrate["env"] if item["name"] == "DATABASE_URL")
    assert migrate_url["valueFrom"]["secretKeyRef"]["key"] == "MIGRATION_DATABASE_URL"
    assert "@pgbouncer:6432/" in secret["DATABASE_URL"] and "pgbouncer" not in secret["MIGRATION_DATABASE_URL"]
    assert all(value.count("change-me") for key, value in secret.items() if "PASSWORD" in key or key == "SECRET_KEY")


def test_service_ingress_hpa_and_pdb_point_at_the_app():
    deployment = by_kind("Deployment")["referral-app"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service")["referral-app"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = by_kind("Ingress")["referral-app"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "referral-app", "port": {"name": "http"}}
    annotations = ingress["metadata"]["annotations"]
    # Websockets stay open between messages far longer than ingress-nginx's 60 s default.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    hpa = by_kind("HorizontalPodAutoscaler")["referral-app"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "referral-app"}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = by_kind("PodDisruptionBudget")["referral-app"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The image's user and the pods' agree.
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"useradd --system --uid (\d+)", dockerfile).group(1)
    assert str(deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == uid


def test_only_the_app_pods_reach_redis_and_with_a_password():
    """Redis holds every tab's page state: its URL (with a password) is a secret, and a
    NetworkPolicy admits only the app's pods, on Redis's port (redis-networkpolicy.yaml)."""
    from urllib.parse import urlsplit

    assert "REFLEX_REDIS_URL" not in by_kind("ConfigMap")["referral-config"]["data"]
    url = urlsplit(by_kind("Secret")["referral-secrets"]["stringData"]["REFLEX_REDIS_URL"])
    assert url.scheme == "redis" and url.password and url.hostname == "redis"
    (app,) = _containers(by_kind("Deployment")["referral-app"])
    redis_url = next(item for item in app["env"] if item["name"] == "REFLEX_REDIS_URL")
    assert redis_url["valueFrom"]["secretKeyRef"] == {"name": "referral-secrets", "key": "REFLEX_REDIS_URL"}

    policy = by_kind("NetworkPolicy")["redis"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "redis"}}
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    app_labels = by_kind("Deployment")["referral-app"]["spec"]["template"]["metadata"]["labels"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"} and source["podSelector"]["matchLabels"].items() <= app_labels.items()
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    assert "app.kubernetes.io/name: redis" in (K8S / "redis-networkpolicy.yaml").read_text().split("apiVersion")[0]

# The ranges clients, pods and nodes come from in a cluster (RFC 1918, RFC 6598 shared
# address space, RFC 4193 unique local IPv6): /metrics must not be open to any of them,
# and no proxy is trusted by a whole one.
CLUSTER_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


def _networks(value: str) -> list:
    import ipaddress

    return [ipaddress.ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip()]


def test_the_app_trusts_exactly_the_proxy_and_metrics_stay_inside():
    """TRUSTED_PROXIES names no range wider than the app accepts in production (the base
    ships it empty: trust nobody), METRICS_ALLOWED_NETWORKS shares no address with it nor
    with the ranges pods and clients come from, and the settings start outside the demo."""
    from referral_app.settings import Settings

    config = by_kind("ConfigMap")["referral-config"]["data"]
    assert config["DEMO_MODE"] == "false"
    trusted = _networks(config["TRUSTED_PROXIES"])
    assert all(network.prefixlen >= (24 if network.version == 4 else 64) for network in trusted), trusted
    metrics = _networks(config["METRICS_ALLOWED_NETWORKS"])
    assert metrics, "METRICS_ALLOWED_NETWORKS is set explicitly"
    for network in metrics:
        assert not any(network.overlaps(proxy) for proxy in trusted), network
        assert not any(network.version == cluster.version and network.overlaps(cluster)
                       for cluster in _networks(",".join(CLUSTER_RANGES))), network  # fmt: skip
    Settings.model_validate({name.lower(): value for name, value in config.items() if name != "WORKERS"})


def test_a_network_policy_lets_only_the_ingress_controller_and_monitoring_reach_the_app():
    deployment = by_kind("Deployment")["referral-app"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (app,) = _containers(deployment)
    app_port = app["ports"][0]["containerPort"]
    policies = [
        policy for policy in by_kind("NetworkPolicy").values()
        if policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]  # fmt: skip
    assert len(policies) == 1, [policy["metadata"]["name"] for policy in policies]
    (policy,) = policies
    assert "Ingress" in policy["spec"]["policyTypes"]
    sources = set()
    for rule in policy["spec"]["ingress"]:
        # A rule without `from` (or with an empty peer) admits every pod and address.
        assert rule.get("from"), f"a rule of {policy['metadata']['name']} admits anyone"
        assert rule.get("ports") == [{"port": app_port, "protocol": "TCP"}], rule
        for peer in rule["from"]:
            assert "ipBlock" not in peer and peer.get("namespaceSelector", {}).get("matchLabels"), peer
            sources.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    assert sources == {"ingress-nginx", "monitoring"}
    # The Ingress is served by that controller.
    assert by_kind("Ingress")["referral-app"]["spec"]["ingressClassName"] == "nginx"
