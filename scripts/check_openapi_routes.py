#!/usr/bin/env python3
"""Checks that openapi.yaml describes exactly the routes the binary serves.

Usage: check_openapi_routes.py BINARY OPENAPI

Runs `BINARY routes` (one `METHOD /path/{param}` per line), reads the operations of OPENAPI, and compares the
two sets of (METHOD, path) pairs both ways. The spec is read by bundling it to JSON with the Redocly CLI
(.salesops/tools/node_modules/.bin/redocly of this repository, else `redocly` on PATH) or, when that is not
available or fails, by loading it with PyYAML.

Exit status: 0 when the sets match, 1 when they differ, 2 when either side could not be read.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ROUTE_LINE = re.compile(r"^([A-Z]+) (/\S*)$")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CheckError(Exception):
    pass


def binary_routes(binary):
    try:
        proc = subprocess.run([binary, "routes"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as e:
        raise CheckError("cannot run %s routes: %s" % (binary, e)) from e
    except subprocess.TimeoutExpired as e:
        raise CheckError("%s routes did not finish in 60 s" % binary) from e
    if proc.returncode != 0:
        raise CheckError("%s routes exited with status %d: %s" % (binary, proc.returncode, proc.stderr.strip()))
    routes = set()
    for number, line in enumerate(proc.stdout.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        m = ROUTE_LINE.match(line)
        if m is None:
            raise CheckError("%s routes, line %d: expected 'METHOD /path', got %r" % (binary, number, line))
        routes.add((m.group(1), m.group(2)))
    if not routes:
        raise CheckError("%s routes printed no routes" % binary)
    return routes


def find_redocly():
    local = os.path.join(REPO_ROOT, ".salesops", "tools", "node_modules", ".bin", "redocly")
    if os.access(local, os.X_OK):
        return local
    return shutil.which("redocly")


def load_with_redocly(redocly, spec_path):
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_UPDATE_NOTIFIER="1")
    with tempfile.TemporaryDirectory(prefix="openapi-routes-") as tmp:
        out = os.path.join(tmp, "openapi.json")
        try:
            proc = subprocess.run([redocly, "bundle", spec_path, "--ext", "json", "-o", out], capture_output=True,
                                  text=True, timeout=300, env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CheckError("redocly bundle failed: %s" % e) from e
        if proc.returncode != 0 or not os.path.exists(out):
            detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise CheckError("redocly bundle exited with status %d%s" %
                             (proc.returncode, ": " + detail[-1] if detail else ""))
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def load_with_yaml(spec_path):
    try:
        import yaml  # optional
    except ImportError as e:
        raise CheckError("PyYAML is not installed") from e
    try:
        with open(spec_path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise CheckError("cannot read %s: %s" % (spec_path, e)) from e


def load_spec(spec_path):
    if not os.path.isfile(spec_path):
        raise CheckError("%s: no such file" % spec_path)
    problems = []
    redocly = find_redocly()
    if redocly is not None:
        try:
            return load_with_redocly(redocly, spec_path), "redocly bundle"
        except CheckError as e:
            problems.append(str(e))
    else:
        problems.append("the Redocly CLI is not installed")
    try:
        return load_with_yaml(spec_path), "PyYAML"
    except CheckError as e:
        problems.append(str(e))
    raise CheckError("cannot read %s: %s" % (spec_path, "; ".join(problems)))


def spec_routes(spec):
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise CheckError("the spec has no `paths` object")
    routes = set()
    for path, item in spec["paths"].items():
        if not isinstance(item, dict):
            raise CheckError("paths[%r] is not an object" % path)
        for method in HTTP_METHODS:
            if method in item:
                routes.add((method.upper(), path))
    return routes


def sort_key(route):
    return (route[1], HTTP_METHODS.index(route[0].lower()) if route[0].lower() in HTTP_METHODS else 99, route[0])


def main(argv):
    if len(argv) != 3:
        print("usage: %s BINARY OPENAPI" % os.path.basename(argv[0]), file=sys.stderr)
        return 2
    binary, spec_path = argv[1], argv[2]
    try:
        served = binary_routes(binary)
        spec, reader = load_spec(spec_path)
        described = spec_routes(spec)
    except CheckError as e:
        print("openapi routes: %s" % e, file=sys.stderr)
        return 2

    missing = sorted(served - described, key=sort_key)
    extra = sorted(described - served, key=sort_key)
    for method, path in missing:
        print("missing from %s (served by the binary): %s %s" % (spec_path, method, path))
    for method, path in extra:
        print("extra in %s (not served by the binary): %s %s" % (spec_path, method, path))
    if missing or extra:
        print("openapi routes: %d missing, %d extra (spec read with %s)" % (len(missing), len(extra), reader))
        return 1
    print("openapi routes: %d operations match" % len(served))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
