"""Kubernetes part of check_deploy.py: docker/k8s/ (kustomization, Deployment, Service,
HPA, prometheus-adapter rules) must agree with each other, with the images and with the
metrics lmserve exposes.
"""

import os
import re

import yaml_subset
from deploy_checks import flag_value


def _by_kind(checks, docs_by_file):
    found = {}
    for where, docs in docs_by_file.items():
        for doc in docs:
            if isinstance(doc, dict) and "kind" in doc:
                found.setdefault(doc["kind"], []).append((where, doc))
    return found


def _probe_port(container, probe):
    port = probe.get("httpGet", {}).get("port")
    for p in container.get("ports", []):
        if port in (p.get("name"), p.get("containerPort")):
            return p.get("containerPort")
    return None


def _prestop_seconds(container):
    pre = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre:
        return float(pre["sleep"].get("seconds", 0))
    command = pre.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] in ("sleep", "/bin/sleep"):
        return float(command[1])
    return 0.0


def _check_deployment(checks, where, deploy, image_names):
    spec = deploy.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    containers = [c for c in pod.get("containers", []) if c.get("name") == "lmserve"]
    if not checks.check(containers, f"{where}: Deployment has no container named lmserve"):
        return None
    container = containers[0]
    checks.check(container.get("image") in image_names,
                 f"{where}: image {container.get('image')} is not one kustomization.yaml rewrites")
    args = [str(a) for a in container.get("args", [])]
    checks.check(not container.get("command"), f"{where}: `command` would replace the image's ENTRYPOINT")
    if not checks.check(args, f"{where}: the lmserve container passes no args"):
        return None
    checks.arg_lists.append((f"{where} args", args))
    port = int(flag_value(args, "--port") or 0)
    named = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    checks.check(port in named.values(), f"{where}: no containerPort is the --port {port}")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if not checks.check(probe, f"{where}: no {kind}"):
            continue
        checks.check(probe.get("httpGet", {}).get("path") == "/health", f"{where}: {kind} does not GET /health")
        checks.check(_probe_port(container, probe) == port, f"{where}: {kind} does not probe the --port {port}")
    limits = container.get("resources", {}).get("limits", {})
    checks.check(int(limits.get("nvidia.com/gpu", 0)) >= 1, f"{where}: no nvidia.com/gpu limit")
    timeout = checks.shutdown_timeout(where, args)
    grace = pod.get("terminationGracePeriodSeconds")
    prestop = _prestop_seconds(container)
    checks.check(prestop > 0, f"{where}: no preStop pause (a terminating Pod would still get requests)")
    if timeout is not None and checks.check(grace is not None, f"{where}: no terminationGracePeriodSeconds"):
        checks.check(grace > prestop + timeout,
                     f"{where}: terminationGracePeriodSeconds {grace} does not exceed preStop {prestop:g} s + "
                     f"--shutdown-timeout {timeout:g} s")
    security = pod.get("securityContext", {})
    checks.check(security.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not set")
    users = {df.stages[-1].last("USER").args.split(":")[0].strip()
             for df in checks.dockerfiles.values() if df.stages and df.stages[-1].last("USER")}
    checks.check(str(security.get("runAsUser")) in users,
                 f"{where}: runAsUser {security.get('runAsUser')} is not the images' USER {sorted(users)}")
    model = flag_value(args, "--model")
    mounts = [m.get("mountPath") for m in container.get("volumeMounts", [])]
    checks.check(model in mounts, f"{where}: --model {model} is not a volumeMount")
    return port


def _adapter_outputs(checks, where, configmap):
    """Custom metric names the adapter rules publish, each checked against metrics.cc."""
    text = configmap.get("data", {}).get("config.yaml")
    if not checks.check(text, f"{where}: the ConfigMap has no config.yaml"):
        return set()
    try:
        config = yaml_subset.load_all(text, f"{where} config.yaml")[0]
    except (yaml_subset.YamlSubsetError, IndexError) as e:
        checks.check(False, f"{where}: config.yaml: {e}")
        return set()
    outputs, queries = set(), []
    for rule in config.get("rules", []):
        series = re.match(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)", rule.get("seriesQuery", ""))
        if not checks.check(series, f"{where}: rule without a metric name in seriesQuery"):
            continue
        name = series.group(1)
        checks.check(name in checks.metric_names, f"{where}: {name} is not a metric of server/metrics.cc")
        overrides = rule.get("resources", {}).get("overrides", {})
        checks.check({"namespace", "pod"} <= set(overrides), f"{where}: rule for {name} maps no namespace/pod")
        naming = rule.get("name", {})
        matches = naming.get("matches", "")
        as_template = naming.get("as", "")
        if matches and as_template:
            m = re.search(matches, name)
            if checks.check(m, f"{where}: name.matches '{matches}' does not match {name}"):
                name = re.sub(r"\$\{(\d+)\}", lambda g: m.group(int(g.group(1))), as_template)
        outputs.add(name)
        # The adapter's template, filled as it would be for one namespace's pods.
        query = rule.get("metricsQuery", "")
        checks.check(query, f"{where}: rule for {series.group(1)} has no metricsQuery")
        queries.append(query.replace("<<.Series>>", series.group(1))
                       .replace("<<.LabelMatchers>>", 'namespace="default",pod=~"lmserve-.*"')
                       .replace("<<.GroupBy>>", "pod"))
    checks.check_promql(where, queries)
    return outputs


def check_kubernetes(checks):
    base = "docker/k8s"
    kust_path = f"{base}/kustomization.yaml"
    if not checks.check(os.path.isfile(checks.path(kust_path)), f"{kust_path}: missing"):
        return
    kust = (checks.load_yaml(kust_path) or [{}])[0]
    resources = kust.get("resources", [])
    docs_by_file = {}
    for resource in resources:
        where = f"{base}/{resource}"
        if checks.check(os.path.isfile(checks.path(where)), f"{kust_path}: resource {resource} does not exist"):
            docs_by_file[where] = checks.load_yaml(where)
    extras = {}
    for name in sorted(os.listdir(checks.path(base))):
        where = f"{base}/{name}"
        if name.endswith((".yaml", ".yml")) and where not in docs_by_file and where != kust_path:
            extras[where] = checks.load_yaml(where)
    kinds = _by_kind(checks, docs_by_file)
    image_names = {i.get("name") for i in kust.get("images", [])}

    deployments = kinds.get("Deployment", [])
    if not checks.check(len(deployments) == 1, f"{base}: expected one Deployment, found {len(deployments)}"):
        return
    where, deploy = deployments[0]
    port = _check_deployment(checks, where, deploy, image_names)
    pod_labels = deploy.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    checks.check(deploy.get("spec", {}).get("selector", {}).get("matchLabels", {}).items() <= pod_labels.items(),
                 f"{where}: the selector does not match the Pod labels")
    container = next(c for c in deploy["spec"]["template"]["spec"]["containers"] if c.get("name") == "lmserve")
    named = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}

    for where, svc in kinds.get("Service", []):
        spec = svc.get("spec", {})
        checks.check(spec.get("selector", {}).items() <= pod_labels.items(), f"{where}: selects no lmserve Pod")
        for p in spec.get("ports", []):
            target = p.get("targetPort")
            checks.check(named.get(target, target) == port, f"{where}: targetPort {target} is not the --port {port}")
    checks.check(kinds.get("Service"), f"{base}: no Service")

    adapter_outputs = set()
    for where, docs in extras.items():
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and "adapter" in where:
                adapter_outputs |= _adapter_outputs(checks, where, doc)
    hpas = kinds.get("HorizontalPodAutoscaler", [])
    checks.check(hpas, f"{base}: no HorizontalPodAutoscaler")
    for where, hpa in hpas:
        spec = hpa.get("spec", {})
        ref = spec.get("scaleTargetRef", {})
        checks.check(ref.get("kind") == "Deployment" and ref.get("name") == deploy["metadata"]["name"],
                     f"{where}: scaleTargetRef is not the lmserve Deployment")
        for metric in spec.get("metrics", []):
            name = metric.get("pods", {}).get("metric", {}).get("name")
            if metric.get("type") == "Pods":
                checks.check(name in adapter_outputs,
                             f"{where}: custom metric {name} is not one the prometheus-adapter rules publish")
