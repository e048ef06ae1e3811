"""The supply-chain records of a dist directory, checked with the formats' own tools.

Every `<variant>/sbom/**/*.cdx.json` must pass the official CycloneDX 1.5 JSON schema
(cyclonedx-python-lib's strict validator, which ships the schemas), and every
`<variant>/provenance/**/*.intoto.json` must be an in-toto Statement v1 with a SLSA
Provenance v1 predicate whose subject is the artifact next to it (sha256 of the file).
Usage: python check_records.py DIST_DIR (cargo xtask ci runs it after the FFI tests).
"""

import hashlib
import json
import pathlib
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"


def check_sbom(path: pathlib.Path) -> list[str]:
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(path.read_text())
    if errors is None:
        return []
    # The first line names the failed rule; the rest is the schema's documentation.
    first = str(errors).splitlines()[0]
    return [f"{path}: not valid CycloneDX 1.5: {first}"]


def check_statement(dist: pathlib.Path, path: pathlib.Path) -> list[str]:
    statement = json.loads(path.read_text())
    problems = []
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is {statement.get('predicateType')!r}")
    subjects = statement.get("subject") or []
    if len(subjects) != 1:
        problems.append(f"{len(subjects)} subjects, expected 1")
    for subject in subjects:
        artifact = dist / subject["name"]
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
        if subject["digest"].get("sha256") != digest:
            problems.append(f"subject {subject['name']} sha256 is not the file's ({digest})")
    definition = statement.get("predicate", {}).get("buildDefinition", {})
    for field in ("buildType", "externalParameters", "resolvedDependencies"):
        if field not in definition:
            problems.append(f"predicate.buildDefinition.{field} is missing")
    builder = statement.get("predicate", {}).get("runDetails", {}).get("builder", {})
    if "id" not in builder:
        problems.append("predicate.runDetails.builder.id is missing")
    return [f"{path}: {p}" for p in problems]


def main() -> int:
    dist = pathlib.Path(sys.argv[1])
    sboms = sorted(dist.glob("*/sbom/**/*.cdx.json"))
    statements = sorted(dist.glob("*/provenance/**/*.intoto.json"))
    if not sboms or not statements:
        print(f"{dist} has no SBOM or provenance records; run `cargo xtask dist`", file=sys.stderr)
        return 1
    problems = [p for s in sboms for p in check_sbom(s)]
    problems += [p for s in statements for p in check_statement(dist, s)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(sboms)} SBOMs (CycloneDX 1.5 schema) and {len(statements)} provenance "
          f"statements checked: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
