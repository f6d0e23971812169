"""Renders the served OpenAPI document as `docs/api.md`, the API reference in the
repository: `python -m api.reference > docs/api.md` (a unit test keeps it current)."""

from __future__ import annotations

from typing import Any

from api.openapi import document

HEADER = """# API reference

Generated from the OpenAPI document the API serves at `/api/v1/openapi.json`
(`python -m api.reference > docs/api.md`). Every error is JSON:
`{"error": {"code", "message", "details"}}`. Routes marked *auth* need
`Authorization: Bearer <access token>`.
"""


def _body_fields(operation: dict[str, Any], schemas: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return ""
    ref = content["schema"].get("$ref", "")
    schema = schemas.get(ref.rsplit("/", 1)[-1], content["schema"])
    required = set(schema.get("required", []))
    names = [f"`{n}`" + ("" if n in required else "?") for n in schema.get("properties", {})]
    return ", ".join(names)


def render() -> str:
    doc = document()
    schemas = doc.get("components", {}).get("schemas", {})
    lines = [HEADER, "| method | path | what | auth | body | query | success | errors |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            statuses = sorted(op.get("responses", {}))
            success = [s for s in statuses if s.startswith("2")]
            errors = [s for s in statuses if not s.startswith("2")]
            query = [f"`{p['name']}`" for p in op.get("parameters", []) if p.get("in") == "query"]
            auth = "yes" if op.get("security") else ""
            lines.append(
                f"| {method.upper()} | `{path}` | {op.get('summary', '')} | {auth} "
                f"| {_body_fields(op, schemas)} | {', '.join(query)} "
                f"| {', '.join(success)} | {', '.join(errors)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
