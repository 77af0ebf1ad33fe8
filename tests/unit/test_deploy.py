"""The deploy/ kit, read as data: Kubernetes manifests (base and the production overlay,
rendered the way kustomize does for the features they use, then validated against the
Kubernetes 1.30 schemas shipped by `kubernetes-validate`), the Prometheus alert rules and the
Grafana dashboard (every series they use exists in the code), docker-compose and the image.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from backend.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "k8s" / "base"
PRODUCTION = DEPLOY / "k8s" / "overlays" / "production"
KUBERNETES_VERSION = "1.30.0"
CLUSTER_SCOPED = {"Namespace"}

Resource = dict[str, Any]


# --------------------------------------------------------------------------- mini kustomize
def strategic_merge(target: Any, patch: Any) -> Any:
    """kustomize's merge for what our patches use: maps merge, named lists merge by name."""
    if isinstance(target, dict) and isinstance(patch, dict):
        for key, value in patch.items():
            target[key] = strategic_merge(target[key], value) if key in target else value
        return target
    named = isinstance(target, list) and isinstance(patch, list)
    named = named and all(isinstance(i, dict) and "name" in i for i in [*target, *patch])
    if named:
        by_name = {item["name"]: item for item in target}
        for item in patch:
            if item["name"] in by_name:
                strategic_merge(by_name[item["name"]], item)
            else:
                target.append(item)
        return target
    return patch


def json_patch(target: Resource, operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        assert operation["op"] in {"replace", "add"}, operation
        *parents, last = operation["path"].strip("/").split("/")
        node: Any = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if operation["op"] == "replace":
            assert last in node, f"{operation['path']} does not exist"
        node[last] = operation["value"]


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} matches"
    return matches[0]


def render(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        assert path.exists(), f"{directory}/kustomization.yaml lists a missing {entry}"
        if path.is_dir():
            resources += render(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    resources = copy.deepcopy(resources)
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            body = yaml.safe_load((directory / patch["path"]).read_text())
            target = find(resources, body["kind"], body["metadata"]["name"])
            strategic_merge(target, body)
        else:
            target = find(resources, patch["target"]["kind"], patch["target"]["name"])
            json_patch(target, yaml.safe_load(patch["patch"]))
    for label_set in kustomization.get("labels", []):
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(label_set["pairs"])
    if namespace := kustomization.get("namespace"):
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    images = {image["name"]: image for image in kustomization.get("images", [])}
    for spec in pod_specs(resources):
        for container in spec["containers"]:
            name = container["image"].split(":")[0]
            if (image := images.get(name)) is not None:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    return resources


def pod_specs(resources: list[Resource]) -> list[dict[str, Any]]:
    return [r["spec"]["template"]["spec"] for r in resources if r["kind"] in {"Deployment", "Job"}]


@pytest.fixture(scope="module", params=["base", "production"])
def manifests(request: pytest.FixtureRequest) -> list[Resource]:
    return render(BASE if request.param == "base" else PRODUCTION)


def deployments(resources: list[Resource]) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == "Deployment"}


# --------------------------------------------------------------------------- manifests
def test_every_manifest_file_parses() -> None:
    files = sorted((DEPLOY / "k8s").rglob("*.yaml"))
    assert len(files) >= 15
    for path in files:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert docs, path
        for doc in docs:
            assert {"apiVersion", "kind"} <= set(doc), path


def test_rendered_resources_are_valid_kubernetes(manifests: list[Resource]) -> None:
    for resource in manifests:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    kinds = {r["kind"] for r in manifests}
    assert {
        "Deployment",
        "Service",
        "Job",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "ServiceAccount",
    } <= kinds
    assert set(deployments(manifests)) == {"orderflow-api", "orderflow-worker", "orderflow-beat"}


def test_the_example_secret_is_valid_and_not_applied() -> None:
    secret = yaml.safe_load((BASE / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    assert secret["metadata"]["name"] == "orderflow-secrets"
    assert "secret.example.yaml" not in (BASE / "kustomization.yaml").read_text().split("#")[0]
    for name in ("kustomization.yaml",):
        listed = yaml.safe_load((BASE / name).read_text())["resources"]
        assert "secret.example.yaml" not in listed


def test_every_workload_has_resources_and_a_locked_down_security_context(
    manifests: list[Resource],
) -> None:
    for resource in manifests:
        if resource["kind"] not in {"Deployment", "Job"}:
            continue
        spec = resource["spec"]["template"]["spec"]
        name = resource["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec["automountServiceAccountToken"] is False, name
        mounted_volumes = {volume["name"] for volume in spec.get("volumes", [])}
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            # A read-only root needs a writable /tmp (Python, Celery's metrics directory).
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name  # noqa: S108
            assert set(mounts.values()) <= mounted_volumes, name


def test_the_api_has_liveness_readiness_and_a_writable_metrics_directory(
    manifests: list[Resource],
) -> None:
    api = deployments(manifests)["orderflow-api"]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "backend", "serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/readiness"
    assert container["startupProbe"]["httpGet"]["path"] == "/api/v1/health"
    port_names = {port["name"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    env = {item["name"]: item["value"] for item in container["env"]}
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert any(multiproc.startswith(mount + "/") for mount in mounts)


def test_worker_and_beat_commands_and_exactly_one_beat(manifests: list[Resource]) -> None:
    workloads = deployments(manifests)
    worker = workloads["orderflow-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"][:5] == ["celery", "-A", "worker.celery_app", "--quiet", "worker"]
    assert worker["livenessProbe"]["tcpSocket"]["port"] == "metrics"
    beat = workloads["orderflow-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    command = beat["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:5] == ["celery", "-A", "worker.celery_app", "--quiet", "beat"]
    schedule = command[command.index("--schedule") + 1]
    mounts = [
        m["mountPath"] for m in beat["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    ]
    assert any(schedule.startswith(mount + "/") for mount in mounts)
    assert not [
        r
        for r in manifests
        if r["kind"] in {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
        and "beat" in r["metadata"]["name"]
    ]


def test_the_migration_job_runs_alembic_once(manifests: list[Resource]) -> None:
    job = find(manifests, "Job", "orderflow-migrate")
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"] == ["python", "-m", "backend", "migrate"]
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1


def test_services_hpa_and_pdbs_select_the_right_pods(manifests: list[Resource]) -> None:
    workloads = deployments(manifests)

    def pods_selected(selector: dict[str, str]) -> set[str]:
        return {
            name
            for name, d in workloads.items()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        }

    for name, d in workloads.items():
        assert d["spec"]["selector"]["matchLabels"].items() <= (
            d["spec"]["template"]["metadata"]["labels"].items()
        ), name
    services = {r["metadata"]["name"]: r for r in manifests if r["kind"] == "Service"}
    assert pods_selected(services["orderflow-api"]["spec"]["selector"]) == {"orderflow-api"}
    assert pods_selected(services["orderflow-api-pods"]["spec"]["selector"]) == {"orderflow-api"}
    assert services["orderflow-api-pods"]["spec"]["clusterIP"] == "None"
    assert pods_selected(services["orderflow-worker"]["spec"]["selector"]) == {"orderflow-worker"}
    for service in services.values():
        (target,) = pods_selected(service["spec"]["selector"])
        container = workloads[target]["spec"]["template"]["spec"]["containers"][0]
        names = {port["name"] for port in container["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= names
    hpa = find(manifests, "HorizontalPodAutoscaler", "orderflow-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "orderflow-api",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = find(manifests, "PodDisruptionBudget", "orderflow-api")
    assert pods_selected(pdb["spec"]["selector"]["matchLabels"]) == {"orderflow-api"}
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # drains can proceed


def test_the_production_overlay_changes_what_it_says() -> None:
    production = render(PRODUCTION)
    assert {r["metadata"].get("namespace") for r in production if r["kind"] != "Namespace"} == {
        "orderflow"
    }
    assert find(production, "Namespace", "orderflow")
    api = deployments(production)["orderflow-api"]
    assert api["spec"]["replicas"] == 3
    assert find(production, "HorizontalPodAutoscaler", "orderflow-api")["spec"]["minReplicas"] == 3
    images = {c["image"] for spec in pod_specs(production) for c in spec["containers"]}
    assert len(images) == 1
    assert not images.pop().endswith(":latest")
    assert deployments(production)["orderflow-beat"]["spec"]["replicas"] == 1


def test_configuration_keys_are_settings_the_app_reads(manifests: list[Resource]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    config = find(manifests, "ConfigMap", "orderflow-config")
    assert set(config["data"]) <= fields, set(config["data"]) - fields
    secret = yaml.safe_load((BASE / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) <= fields
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(secret["stringData"])
    assert not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} & set(config["data"])
    assert config["data"]["ENVIRONMENT"] == "production"
    # Every value parses as the app would parse it.
    values = {key.lower(): value for key, value in config["data"].items()}
    Settings(_env_file=None, **values, secret_key="x" * 48)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- series
def exposed_series() -> set[str]:
    """Every series name the API and the worker can expose (declared in the code)."""
    from prometheus_client import REGISTRY

    import backend.core.metrics  # noqa: F401  (registers the business metrics)
    from backend.api.app import create_app
    from tests.support import make_settings

    app = create_app(make_settings(Path("."), "sqlite+aiosqlite:///:memory:"))
    names = {"up"}
    for family in [*REGISTRY.collect(), *app.state.http_metrics.collect()]:
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        names.update(family.name + suffix for suffix in suffixes.get(family.type, []))
    return names


PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}


def series_in(expr: str) -> set[str]:
    """The series names of a PromQL expression (what is left once strings, label matchers,
    ranges, groupings and function calls are taken out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    names = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    return {name for name in names if name not in PROMQL_KEYWORDS}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_exposed_series_and_say_what_to_do() -> None:
    exposed = exposed_series()
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {
        "OrderflowApiHighErrorRate",
        "OrderflowApiHighLatencyP99",
        "OrderflowApiReadinessFailing",
        "OrderflowOutboxStalled",
        "OrderflowCeleryTaskFailures",
        "OrderflowRateLimitSurge",
    } <= names
    for rule in rules:
        used = series_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= exposed, (rule["alert"], used - exposed)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert name in readme, f"README 'Operations' does not explain {name}"


def test_every_alert_has_a_promtool_unit_test() -> None:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts.test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    untested = {rule["alert"] for rule in alert_rules()} - tested
    assert untested <= {"OrderflowWorkerTargetDown"}, untested


def test_the_dashboard_charts_exposed_series_including_every_alerted_one() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "orderflow.json").read_text())
    exposed = exposed_series()
    charted: set[str] = set()
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        for target in panel.get("targets", []):
            used = series_in(target["expr"])
            assert used <= exposed, (panel["title"], used - exposed)
            charted |= used
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
    assert len(ids) == len(set(ids))
    alerted = set().union(*(series_in(rule["expr"]) for rule in alert_rules()))
    assert alerted <= charted, alerted - charted
    assert dashboard["uid"] and dashboard["title"] == "Orderflow"


# --------------------------------------------------------------------------- compose, image
def test_compose_runs_prometheus_with_the_alerts_and_the_api_with_workers() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    mounts = services["prometheus"]["volumes"]
    for mount in mounts:
        assert (ROOT / mount.split(":")[0]).exists(), mount
    assert any(m.endswith("/etc/prometheus/alerts.yml:ro") for m in mounts)
    assert services["api"]["environment"]["API_WORKERS"] == "2"
    compose_prometheus = yaml.safe_load(
        (DEPLOY / "prometheus" / "prometheus.compose.yml").read_text()
    )
    jobs = {job["job_name"] for job in compose_prometheus["scrape_configs"]}
    assert jobs == {"orderflow-api", "orderflow-worker"}
    assert compose_prometheus["rule_files"] == ["alerts.yml"]


def test_the_image_runs_the_api_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert 'CMD ["python", "-m", "backend", "serve"]' in runtime
    assert "--chown" not in runtime  # the code is not writable by the app user
