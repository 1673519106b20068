#!/usr/bin/env python3
"""Validates every object of deploy/kubernetes against its schema.

Usage: validate.py KUBERNETES_VERSION [FOLDER]
(for example 1.34.0; FOLDER defaults to deploy/kubernetes)

- Renders deploy/kubernetes/base and every overlay the way kustomize does for
  what these kustomizations use (resources and components, recursively). Any
  other kustomize feature is refused, so that this rendering stays exact.
- Built-in kinds: kubernetes-validate (PyPI, pinned by scripts/provision.sh),
  strict, so an unknown field is an error.
- cert-manager and Prometheus Operator kinds: the OpenAPI schema of their CRD
  (tests/crds, sources in SOURCES.md), made strict the same way.

Prints one line per object; exits 1 naming every problem.
"""
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent  # main() may change it
KNOWN_KEYS = {"apiVersion", "kind", "resources", "components"}


def render(folder, seen=()):
    """The objects of a kustomization folder, in kustomize's order."""
    folder = folder.resolve()
    if folder in seen:
        raise SystemExit(f"{folder}: kustomization cycle")
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    extra = set(spec) - KNOWN_KEYS
    if extra:
        raise SystemExit(f"{folder}/kustomization.yaml: {sorted(extra)} is not rendered by this test")
    objects = []
    for key in ("resources", "components"):
        for entry in spec.get(key) or []:
            path = folder / entry
            if path.is_dir():
                objects += render(path, seen + (folder,))
            else:
                objects += [(f"{path.relative_to(ROOT)}", o) for o in yaml.safe_load_all(path.read_text()) if o]
    return objects


def strict(schema):
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema \
                and "x-kubernetes-preserve-unknown-fields" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def crd_schemas():
    schemas = {}
    for path in sorted((ROOT / "tests" / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            # metadata is the API server's ObjectMeta, left open by CRDs.
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def main(argv):
    global ROOT
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    version = argv[1]
    if len(argv) == 3:
        ROOT = pathlib.Path(argv[2]).resolve()
    crds = crd_schemas()
    problems = []
    folders = [ROOT / "base"] + sorted(
        p for parent in ("components", "overlays") for p in (ROOT / parent).iterdir() if p.is_dir()
    )
    for folder in folders:
        objects = render(folder)
        print(f"{folder.relative_to(ROOT)}: {len(objects)} objects")
        for source, obj in objects:
            name = f"{source}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
            key = (obj.get("apiVersion"), obj.get("kind"))
            try:
                if key in crds:
                    jsonschema.validate(obj, crds[key])
                    how = "CRD schema"
                else:
                    kubernetes_validate.validate(obj, version, strict=True)
                    how = f"Kubernetes {version}"
                print(f"  ok ({how}): {name}")
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
                problems.append(f"{name}: {e.message} at {'/'.join(map(str, e.path))}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.append(f"{name}: no schema for {key}: {e}")
    for p in problems:
        print(f"INVALID {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
