#!/usr/bin/env python3
"""Validates tend configuration files against docs/tend.schema.json with the `jsonschema`
package (Debian: python3-jsonschema), as an editor would: tend's own code is not involved.

    validate_schema.py SCHEMA < JOBS

JOBS is a JSON array; each job is {"name": ..., "toml": TEXT} or {"name": ..., "path": FILE}
(a TOML file, read with tomllib), or {"name": ..., "self-check": true}, which validates every
`default` and `examples` value in the schema against the schema beside it. Prints one JSON
object: {"jsonschema": VERSION, "results": [{"name", "valid", "errors"}, ...]}.

Before any job, the schema itself is checked against the draft 2020-12 meta-schema.
Exit codes: 0 when every job ran (valid or not); 2 on a usage error or bad input; 3 when the
jsonschema package is missing; 4 when the schema is not a valid draft 2020-12 schema.
"""

import json
import sys
import tomllib

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError as e:
    print(
        f"validate_schema.py: cannot import jsonschema ({e}); install python3-jsonschema "
        "(Debian) or `pip install jsonschema`",
        file=sys.stderr,
    )
    sys.exit(3)


def version():
    try:
        from importlib.metadata import version as v

        return v("jsonschema")
    except Exception:  # noqa: BLE001 - any failure just means "unknown"
        return "unknown"


def messages(validator, instance):
    """Every error, with where it is ("services.web.restart: ...")."""
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        out.append(f"{where}: {error.message}")
    return out


def self_check(schema):
    """Each `default` and `examples` value against the schema it stands in. References in
    that schema point into `$defs`, so it is checked inside a copy of the root's `$defs`."""
    errors = []

    def visit(node, where):
        if isinstance(node, dict):
            values = []
            if "default" in node:
                values.append(("default", node["default"]))
            for example in node.get("examples", []):
                values.append(("example", example))
            if values:
                probe = {
                    "$schema": schema["$schema"],
                    "$defs": schema.get("$defs", {}),
                    "allOf": [node],
                }
                validator = Draft202012Validator(probe)
                for kind, value in values:
                    for message in messages(validator, value):
                        errors.append(f"{where}: {kind} {json.dumps(value)}: {message}")
            for key, child in node.items():
                visit(child, f"{where}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                visit(child, f"{where}/{i}")

    visit(schema, "#")
    return errors


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        schema = json.load(f)
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        print(f"validate_schema.py: not a valid draft 2020-12 schema: {e.message}", file=sys.stderr)
        return 4
    validator = Draft202012Validator(schema)
    jobs = json.load(sys.stdin)
    results = []
    for job in jobs:
        name = job["name"]
        try:
            if job.get("self-check"):
                errors = self_check(schema)
            else:
                if "path" in job:
                    with open(job["path"], "rb") as f:
                        document = tomllib.load(f)
                else:
                    document = tomllib.loads(job["toml"])
                errors = messages(validator, document)
        except (OSError, tomllib.TOMLDecodeError) as e:
            errors = [f"cannot read: {e}"]
        results.append({"name": name, "valid": not errors, "errors": errors})
    json.dump({"jsonschema": version(), "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
