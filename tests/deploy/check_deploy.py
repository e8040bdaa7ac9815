#!/usr/bin/env python3
"""Checks that the deployment files under docker/ agree with the sources they deploy.

No Docker engine or cluster runs in CI, so this is what keeps docker/ from rotting:
  files    every COPY source exists and survives .dockerignore; stages and build options
           exist; ENTRYPOINT/CMD/HEALTHCHECK/EXPOSE/USER/STOPSIGNAL are what a drained,
           probed, non-root server needs; YAML parses; compose, Prometheus, Grafana and
           Kubernetes agree on ports, paths, /health, grace periods and metric names
           (every lmserve:* name must be one server/metrics.cc registers).
  flags    with --lmserve BIN: every `lmserve serve` argument list in docker/ names only
           flags of `BIN serve --help` and its values parse (`BIN serve ARGS --help`).
Prints one line per problem and exits 1 if there is any.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_checks import DeployChecks  # noqa: E402


def serve_flag_errors(lmserve, arg_lists):
    """Runs the binary: the flags of `serve --help`, then each argument list with --help."""
    errors = []
    try:
        helped = subprocess.run([lmserve, "serve", "--help"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        return [f"{lmserve}: cannot run: {e}"]
    if helped.returncode != 0:
        return [f"`{lmserve} serve --help` exited {helped.returncode}: {helped.stderr.strip()[:300]}"]
    known = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", helped.stdout))
    if "--model" not in known or "--shutdown-timeout" not in known:
        errors.append(f"`{lmserve} serve --help` lists no --model/--shutdown-timeout: not the serve command")
    for where, args in arg_lists:
        for arg in args:
            if arg.startswith("--"):
                flag = arg.split("=", 1)[0]
                if flag not in known:
                    errors.append(f"{where}: `lmserve serve` has no flag {flag}")
        parsed = subprocess.run([lmserve, "serve", *args, "--help"], capture_output=True, text=True, timeout=60)
        if parsed.returncode != 0:
            message = (parsed.stderr or parsed.stdout).strip().splitlines()
            errors.append(f"{where}: `lmserve serve {' '.join(args)}` does not parse: "
                          f"{message[0] if message else 'exit ' + str(parsed.returncode)}")
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-dir", required=True, help="repository root")
    parser.add_argument("--lmserve", help="built lmserve executable: also check the serve flags")
    parser.add_argument("--flags-only", action="store_true",
                        help="report only the serve-flag checks (the static ones have their own test)")
    parser.add_argument("--promtool", default=shutil.which("promtool"), help="promtool for prometheus.yml")
    args = parser.parse_args()

    checks = DeployChecks(os.path.abspath(args.source_dir), promtool=args.promtool)
    checks.run_all()
    errors = [] if args.flags_only else list(checks.errors)
    if args.flags_only and not args.lmserve:
        parser.error("--flags-only needs --lmserve")
    if args.lmserve:
        arg_lists = checks.serve_arg_lists()
        if not arg_lists:
            errors.append("found no `lmserve serve` argument lists in docker/ to check")
        errors += serve_flag_errors(args.lmserve, arg_lists)
        print(f"check_deploy: checked {len(arg_lists)} serve argument lists against {args.lmserve}")
    for note in checks.notes:
        print(f"note: {note}")
    for error in errors:
        print(f"FAIL: {error}")
    if not args.flags_only:
        print(f"check_deploy: {checks.count} static checks")
    print(f"check_deploy: {len(errors)} failures")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
