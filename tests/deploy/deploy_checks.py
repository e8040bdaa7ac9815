"""DeployChecks: the static checks of check_deploy.py over docker/, .dockerignore and
docs/deploy.md (Dockerfiles, compose, Prometheus, Grafana here; Kubernetes in k8s_checks.py).
Each check counts itself and records a one-line failure naming the file at fault.
"""

import glob
import json
import os
import re
import subprocess
import tempfile

import yaml_subset
from dockerfile import Dockerfile, DockerIgnore

try:
    import yaml as pyyaml
except ImportError:  # CI images without python3-yaml use the subset parser alone
    pyyaml = None

SERVE_PORT_FLAG = "--port"
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def flag_value(args, flag):
    """The value of `--flag V` or `--flag=V` in an argument list (last one wins), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def compose_interpolate(value):
    """Compose's ${VAR:-default}, with every variable unset: what a plain `up` gets."""
    return _COMPOSE_VAR.sub(lambda m: m.group(2) or "", value) if isinstance(value, str) else value


def duration_seconds(text):
    """Compose durations such as 40s, 1m30s, 500ms."""
    total, matched = 0.0, ""
    for number, unit in re.findall(r"([0-9.]+)(ms|us|h|m|s)", str(text)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
        matched += number + unit
    if matched != str(text):
        raise ValueError(f"'{text}' is not a duration")
    return total


class DeployChecks:
    def __init__(self, root, promtool=None):
        self.root, self.promtool = root, promtool
        self.errors, self.notes, self.count = [], [], 0
        self.arg_lists = []      # (where, args) of every `lmserve serve` invocation
        self.image_paths = {}    # path inside the runtime images -> source path in the repo
        self.metric_names = set()
        self.dockerfiles = {}
        self.compose = {}

    # -- helpers ---------------------------------------------------------------------------
    def check(self, condition, message):
        self.count += 1
        if not condition:
            self.errors.append(message)
        return bool(condition)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def read(self, rel_path):
        with open(self.path(rel_path), encoding="utf-8") as f:
            return f.read()

    def load_yaml(self, rel_path):
        """All documents of a YAML file; both parsers must agree when PyYAML exists."""
        text = self.read(rel_path)
        try:
            docs = yaml_subset.load_all(text, rel_path)
        except yaml_subset.YamlSubsetError as e:
            self.check(False, f"{rel_path}: {e}")
            return []
        self.check(docs, f"{rel_path}: no YAML document")
        if pyyaml is not None:
            try:
                reference = [d for d in pyyaml.safe_load_all(text) if d is not None]
            except pyyaml.YAMLError as e:
                self.check(False, f"{rel_path}: PyYAML: {e}")
                return docs
            self.check(reference == docs, f"{rel_path}: PyYAML reads it differently from yaml_subset.py")
        return docs

    def check_metric_refs(self, where, text):
        """Every lmserve:* metric name in `text` is a series server/metrics.cc exposes (image
        tags such as lmserve:cuda and addresses such as lmserve:8000 have no '_')."""
        for name in sorted(set(re.findall(r"(?<![\w/.-])lmserve:[a-z][a-z0-9]*_[a-z0-9_]*", text))):
            self.check(name in self.metric_names, f"{where}: {name} is not a metric of server/metrics.cc")

    def shutdown_timeout(self, where, args):
        """--shutdown-timeout from the arguments, else the --config file's, else the default."""
        value = flag_value(args, "--shutdown-timeout")
        if value is not None:
            return float(value)
        sources = []
        config = flag_value(args, "--config")
        if config is not None:
            source = self.image_paths.get(config)
            if not self.check(source, f"{where}: --config {config} is not a file the images COPY"):
                return None
            sources.append(source)
        sources.append("configs/default.json")
        for source in sources:
            if os.path.isfile(self.path(source)):
                data = json.loads(self.read(source))
                if "shutdown_timeout" in data:
                    return float(data["shutdown_timeout"])
        self.check(False, f"{where}: cannot tell the shutdown timeout (no --shutdown-timeout, no configs/default.json)")
        return None

    def serve_arg_lists(self):
        return list(self.arg_lists)

    # -- checks ----------------------------------------------------------------------------
    def run_all(self):
        from k8s_checks import check_kubernetes

        self.check_metrics_source()
        self.check_dockerfiles()
        self.check_compose()
        self.check_prometheus()
        self.check_grafana()
        check_kubernetes(self)
        self.check_docs()

    def check_metrics_source(self):
        path = "server/metrics.cc"
        if not self.check(os.path.isfile(self.path(path)), f"{path}: missing (the metric names are checked against it)"):
            return
        text = self.read(path)
        names = set(re.findall(r'"(lmserve:[a-z0-9_]+)"', text))
        histograms = set(re.findall(r'histogram\(\s*"(lmserve:[a-z0-9_]+)"', text))
        self.check(histograms, f"{path}: found no histogram( \"lmserve:...\" ) registrations")
        self.metric_names = names | {h + suffix for h in histograms for suffix in ("_bucket", "_sum", "_count")}
        for required in ("lmserve:num_requests_waiting", "lmserve:num_requests_running", "lmserve:kv_cache_usage_perc"):
            self.check(required in names, f"{path}: no {required} (the gateway and HPA read it)")

    def tracked_files(self, rel_dir):
        """Files under a folder that git tracks, or every file when git knows none."""
        try:
            out = subprocess.run(["git", "-C", self.root, "ls-files", "-z", "--", rel_dir],
                                 capture_output=True, text=True, timeout=60)
            files = [f for f in out.stdout.split("\0") if f] if out.returncode == 0 else []
        except OSError:
            files = []
        if files:
            return files
        found = []
        for base, _, names in os.walk(self.path(rel_dir)):
            found += [self.rel(os.path.join(base, n)) for n in names]
        return found

    def check_copy_sources(self, where, copy, ignore):
        for source in copy.sources:
            if not self.check(not source.startswith("/") and ".." not in source.split("/"),
                              f"{where}: COPY source {source} is outside the build context"):
                continue
            matches = glob.glob(self.path(source))
            if not self.check(matches, f"{where}: COPY source {source} does not exist in the repository"):
                continue
            for match in matches:
                rel = self.rel(match)
                self.check(not ignore.excluded(rel), f"{where}: COPY source {rel} is excluded by .dockerignore")
                if os.path.isdir(match):
                    left_out = [f for f in self.tracked_files(rel) if ignore.excluded(f)]
                    self.check(not left_out, f"{where}: .dockerignore leaves out {', '.join(left_out[:3])}")

    def check_dockerfiles(self):
        if not self.check(os.path.isfile(self.path(".dockerignore")), ".dockerignore: missing"):
            return
        ignore = DockerIgnore(self.read(".dockerignore"))
        self.check(ignore.excluded("build/release/cli/lmserve"), ".dockerignore: build folders reach the context")
        self.check(ignore.excluded(".git/HEAD"), ".dockerignore: .git reaches the context")
        cmake_text = self.read("CMakeLists.txt") + "".join(
            open(p, encoding="utf-8").read() for p in glob.glob(self.path("cmake", "*.cmake")))
        paths = sorted(glob.glob(self.path("docker", "Dockerfile.*")))
        self.check(len(paths) >= 2, "docker/: expected Dockerfile.cpu and Dockerfile.cuda")
        for path in paths:
            where = self.rel(path)
            df = Dockerfile(open(path, encoding="utf-8").read(), where)
            self.dockerfiles[where] = df
            self.check(len(df.stages) >= 2, f"{where}: not a multi-stage build")
            for stage in df.stages:
                for copy in df.copies(stage):
                    loc = f"{where}:{copy.instruction.line}"
                    if "from" in copy.flags:
                        other = df.stage_named(copy.flags["from"])
                        self.check(other is not None and other.index < stage.index,
                                   f"{loc}: COPY --from={copy.flags['from']} names no earlier stage")
                    else:
                        self.check_copy_sources(loc, copy, ignore)
                for ins in stage.all("RUN"):
                    for option in re.findall(r"-D(LMSERVE_[A-Z0-9_]+)=", ins.args):
                        self.check(option in cmake_text, f"{where}:{ins.line}: CMake has no option {option}")
            self.check_includes_copied(where, df)
            build_runs = " ".join(i.args for s in df.stages[:-1] for i in s.all("RUN"))
            for option in ("-DLMSERVE_BUILD_TESTS=OFF", "-DLMSERVE_BUILD_BENCH=OFF"):
                self.check(option in build_runs, f"{where}: the build stage does not pass {option}")
            self.check("install-deps.sh" in build_runs, f"{where}: the build stage does not run scripts/install-deps.sh")
            self.check_runtime_stage(where, df)

    def check_includes_copied(self, where, df):
        """The sources the build stages COPY include headers only from folders also COPYed."""
        copied = {src.split("/")[0] for stage in df.stages[:-1] for c in df.copies(stage)
                  if "from" not in c.flags for src in c.sources}
        for top in sorted(copied):
            if not os.path.isdir(self.path(top)):
                continue
            for rel in self.tracked_files(top):
                if not rel.endswith((".h", ".cc", ".cu", ".cuh", ".hpp", ".cpp")):
                    continue
                with open(self.path(rel), encoding="utf-8", errors="replace") as f:
                    includes = set(re.findall(r'^\s*#\s*include\s+"([^"/]+)/', f.read(), re.MULTILINE))
                for folder in includes:
                    if os.path.isdir(self.path(folder)):
                        self.check(folder in copied, f"{where}: {rel} includes {folder}/, which the build does not COPY")

    def check_runtime_stage(self, where, df):
        final = df.stages[-1]
        runs = " ".join(i.args for i in final.all("RUN"))
        self.check("install-deps.sh --runtime" in runs, f"{where}: the runtime stage does not install-deps.sh --runtime")
        for copy in df.copies(final):
            if "from" in copy.flags:
                continue
            for source in copy.sources:
                self.image_paths[copy.dest.rstrip("/")] = source
                if os.path.isdir(self.path(source)):
                    for name in os.listdir(self.path(source)):
                        self.image_paths[copy.dest.rstrip("/") + "/" + name] = source + "/" + name
        binary = [c for c in df.copies(final) if "from" in c.flags and c.sources[-1].endswith("/cli/lmserve")]
        self.check(binary and binary[0].dest in ("/usr/local/bin/lmserve", "/usr/bin/lmserve"),
                   f"{where}: the runtime stage does not COPY build/cli/lmserve onto the PATH")
        user = final.last("USER")
        self.check(user and user.args.split(":")[0].strip() not in ("root", "0"), f"{where}: no non-root USER")
        self.check(user and user.args.split(":")[0].strip().isdigit(),
                   f"{where}: USER is not numeric (Kubernetes runAsNonRoot cannot verify a name)")
        entry = final.last("ENTRYPOINT")
        self.check(entry and entry.exec_form() == ["lmserve", "serve"],
                   f"{where}: ENTRYPOINT is not the exec form [\"lmserve\", \"serve\"] (SIGTERM must reach lmserve)")
        cmd = final.last("CMD")
        args = cmd.exec_form() if cmd else None
        if not self.check(args is not None, f"{where}: CMD is missing or not in exec form"):
            return
        self.arg_lists.append((f"{where} CMD", args))
        port = flag_value(args, SERVE_PORT_FLAG)
        self.check(port is not None, f"{where}: CMD does not set {SERVE_PORT_FLAG}")
        self.check(flag_value(args, "--host") == "0.0.0.0", f"{where}: CMD does not listen on 0.0.0.0")
        self.check(flag_value(args, "--model") == "/models", f"{where}: CMD does not serve the model at /models")
        config = flag_value(args, "--config")
        if config is not None and self.check(config in self.image_paths, f"{where}: --config {config} is not COPYed"):
            try:
                json.loads(self.read(self.image_paths[config]))
            except (OSError, ValueError) as e:
                self.check(False, f"{where}: {self.image_paths[config]}: {e}")
        exposed = " ".join(i.args for i in final.all("EXPOSE")).split()
        self.check(port in [p.split("/")[0] for p in exposed], f"{where}: EXPOSE does not list the port {port}")
        health = final.last("HEALTHCHECK")
        self.check(health and f"127.0.0.1:{port}/health" in health.args,
                   f"{where}: HEALTHCHECK does not probe http://127.0.0.1:{port}/health")
        stop = final.last("STOPSIGNAL")
        self.check(stop and stop.args.strip() == "SIGTERM", f"{where}: STOPSIGNAL is not SIGTERM")

    def check_compose(self):
        # The base file first: override files (compose.cuda.yaml) inherit from it.
        files = sorted(glob.glob(self.path("docker", "compose*.yaml")), key=lambda p: not p.endswith("/compose.yaml"))
        if not self.check(self.path("docker", "compose.yaml") in files, "docker/compose.yaml: missing"):
            return
        for path in files:
            where = self.rel(path)
            docs = self.load_yaml(where)
            if not docs:
                continue
            services = docs[0].get("services", {})
            self.compose[where] = services
            lmserve = services.get("lmserve")
            if not self.check(isinstance(lmserve, dict), f"{where}: no lmserve service"):
                continue
            build = lmserve.get("build", {})
            context = os.path.normpath(os.path.join(os.path.dirname(path), build.get("context", ".")))
            self.check(context == self.root, f"{where}: lmserve build context is not the repository root")
            dockerfile = build.get("dockerfile")
            self.check(dockerfile in (None, *[os.path.relpath(self.path(d), context) for d in self.dockerfiles]),
                       f"{where}: lmserve builds from {dockerfile}, which is not one of docker/Dockerfile.*")
            args = [str(compose_interpolate(a)) for a in lmserve.get("command", [])]
            if args:
                self.arg_lists.append((f"{where} lmserve.command", args))
                port = flag_value(args, SERVE_PORT_FLAG)
                for mapping in lmserve.get("ports", []):
                    self.check(str(mapping).split(":")[-1] == port,
                               f"{where}: port mapping {mapping} does not reach --port {port}")
                timeout = self.shutdown_timeout(where, args)
                # An override file (compose.cuda.yaml) inherits the base file's grace period.
                base = self.compose.get("docker/compose.yaml", {}).get("lmserve", {})
                grace = lmserve.get("stop_grace_period", base.get("stop_grace_period"))
                if timeout is not None and self.check(grace, f"{where}: lmserve has no stop_grace_period"):
                    self.check(duration_seconds(grace) > timeout,
                               f"{where}: stop_grace_period {grace} does not exceed --shutdown-timeout {timeout:g}")
            for name, service in services.items():
                for volume in service.get("volumes", []):
                    host = compose_interpolate(str(volume)).split(":")[0]
                    if host.startswith((".", "/")):
                        self.check(os.path.exists(os.path.join(os.path.dirname(path), host)),
                                   f"{where}: {name} mounts {host}, which does not exist")

    def check_prometheus(self):
        where = "docker/prometheus.yml"
        if not self.check(os.path.isfile(self.path(where)), f"{where}: missing"):
            return
        docs = self.load_yaml(where)
        targets = [t for job in (docs[0] if docs else {}).get("scrape_configs", [])
                   for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        cmd = dict(self.arg_lists).get("docker/compose.yaml lmserve.command", [])
        expected = f"lmserve:{flag_value(cmd, SERVE_PORT_FLAG)}"
        self.check(expected in targets, f"{where}: does not scrape the compose service at {expected}")
        if self.promtool:
            out = subprocess.run([self.promtool, "check", "config", self.path(where)],
                                 capture_output=True, text=True, timeout=60)
            self.check(out.returncode == 0, f"{where}: promtool check config: {(out.stdout + out.stderr).strip()}")
        else:
            self.notes.append("promtool not found: prometheus.yml checked as YAML only")

    def check_grafana(self):
        base = "docker/grafana"
        datasources = self.load_yaml(f"{base}/provisioning/datasources/prometheus.yml")
        uids = {d.get("uid") for doc in datasources for d in doc.get("datasources", [])}
        providers = self.load_yaml(f"{base}/provisioning/dashboards/lmserve.yml")
        provider_paths = {p.get("options", {}).get("path") for doc in providers for p in doc.get("providers", [])}
        mounts = [str(v) for v in self.compose.get("docker/compose.yaml", {}).get("grafana", {}).get("volumes", [])]
        self.check(f"./grafana/dashboards:{next(iter(provider_paths), '')}:ro" in mounts,
                   f"{base}: the dashboards provider path {provider_paths} is not where compose mounts dashboards")
        self.check("./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts,
                   "docker/compose.yaml: grafana does not mount ./grafana/provisioning")
        dashboards = sorted(glob.glob(self.path(base, "dashboards", "*.json")))
        self.check(dashboards, f"{base}/dashboards: no dashboard")
        for path in dashboards:
            where = self.rel(path)
            try:
                dash = json.loads(self.read(where))
            except ValueError as e:
                self.check(False, f"{where}: {e}")
                continue
            exprs = []
            for panel in dash.get("panels", []):
                ds = panel.get("datasource", {})
                self.check(ds.get("uid") in uids, f"{where}: panel '{panel.get('title')}' uses datasource {ds}")
                exprs += [t.get("expr", "") for t in panel.get("targets", [])]
            for variable in dash.get("templating", {}).get("list", []):
                ds = variable.get("datasource")
                if ds is not None:
                    self.check(ds.get("uid") in uids, f"{where}: variable '{variable.get('name')}' uses datasource {ds}")
            self.check(all(exprs) and exprs, f"{where}: a panel has no query")
            self.check_metric_refs(where, "\n".join(exprs) + json.dumps(dash.get("templating", {})))
            self.check_promql(where, exprs)
            text = " ".join(exprs)
            for needed in ("time_to_first_token", "inter_token_latency", "generation_tokens_total",
                           "num_requests_waiting", "kv_cache_usage_perc"):
                self.check(needed in text, f"{where}: no panel shows lmserve:{needed}")

    def check_promql(self, where, exprs):
        """PromQL syntax, through `promtool check rules` on a recording rule per query
        (Grafana's $variables replaced by what they expand to)."""
        if not self.promtool or not exprs:
            return
        grafana = {"$__rate_interval": "1m", "$__interval": "15s", "$model_name": ".*", "$instance": ".*"}
        rules = []
        for i, expr in enumerate(exprs):
            for var, value in grafana.items():
                expr = expr.replace(var, value)
            rules.append({"record": f"lmserve_deploy_check:q{i}", "expr": expr})
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            json.dump({"groups": [{"name": "deploy_check", "rules": rules}]}, f)  # JSON is YAML
        try:
            out = subprocess.run([self.promtool, "check", "rules", f.name], capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(f.name)
        self.check(out.returncode == 0, f"{where}: promtool rejects a query: {(out.stdout + out.stderr).strip()[-400:]}")

    def check_docs(self):
        where = "docs/deploy.md"
        if not self.check(os.path.isfile(self.path(where)), f"{where}: missing"):
            return
        text = self.read(where)
        self.check_metric_refs(where, text)
        for needed in ("lmserve:num_requests_waiting", "lmserve:num_requests_running", "lmserve:kv_cache_usage_perc",
                       "--total-queued-requests-metric", "--kv-cache-usage-percentage-metric",
                       "docker build", "kubectl apply", "compose"):
            self.check(needed in text, f"{where}: does not mention {needed}")
