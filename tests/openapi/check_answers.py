#!/usr/bin/python3
"""Validates every answer the integration tests recorded against docs/openapi.yaml.

Usage: check_answers.py OPENAPI_YAML ANSWER_LOG [--min-answers N]

ANSWER_LOG holds one JSON line per answer recgate gave a test
(tests/integration/harness.cpp, record_answer): method, path, status, headers,
body. Each answer must match a documented operation and status (an unknown
path or method, or a request refused before routing: the document's
x-recgate-fallback-responses), carry a content
type the document lists for that status, and its body and documented headers
must validate (JSON Schema Draft 2020-12, the document's $refs resolved).
Exit 0 when every answer validates, 1 otherwise (each failure printed).
"""
import argparse
import collections
import json
import re
import sys

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def load_document(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def path_matchers(doc):
    """(regex, template) for each documented path; {param} matches one segment."""
    out = []
    for template in doc["paths"]:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        out.append((re.compile("^" + pattern + "$"), template))
    return out


def resolve(doc, node):
    """Follows a local $ref (#/a/b) to the object it names."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError("only local $refs are supported: " + ref)
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.matchers = path_matchers(doc)
        # The whole document is the schema resource, so "#/components/..." refs resolve.
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
        self.seen = collections.Counter()

    def validate(self, schema, instance):
        v = jsonschema.Draft202012Validator(schema, resolver=self.resolver,
                                            format_checker=jsonschema.FormatChecker())
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))]

    def response_for(self, method, path, status):
        """(key, response object) documented for this answer, or (key, None)."""
        template = next((t for rx, t in self.matchers if rx.match(path)), None)
        op = None
        if template is not None:
            item = self.doc["paths"][template]
            op = item.get(method.lower())
            if op is None and method == "HEAD":
                op = item.get("get")  # every GET route answers HEAD with the headers only
        if op is not None and str(status) in op.get("responses", {}):
            return f"{method} {template} {status}", resolve(self.doc, op["responses"][str(status)])
        fallbacks = self.doc.get("x-recgate-fallback-responses", {})
        early = fallbacks.get("beforeRouting", {}).get(str(status))
        if early is not None:  # refused while reading the request: any path, any method
            return f"(before routing) {status}", resolve(self.doc, early)
        if template is None:
            return f"(unknown path) {status}", (resolve(self.doc, fallbacks["unknownPath"]) if status == 404 else None)
        if op is None:
            return f"{template} (other method) {status}", (
                resolve(self.doc, fallbacks["otherMethod"]) if status == 405 else None)
        return f"{method} {template} {status}", None

    def check(self, answer):
        method, path, status = answer["method"], answer["path"], answer["status"]
        headers = {k.lower(): v for k, v in answer.get("headers", {}).items()}
        key, resp = self.response_for(method, path, status)
        self.seen[key] += 1
        if resp is None:
            return [f"{method} {path} answered {status}, which docs/openapi.yaml does not document"]
        errors = []
        content = resp.get("content", {})
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        body = answer.get("body", "")
        if not content:
            if ctype or body:
                errors.append(f"documented without a body, but came with content-type {ctype!r} and "
                              f"{len(body)} bytes")
        elif ctype not in content:
            errors.append(f"content-type {ctype!r} is not documented (documented: {', '.join(content)})")
        elif method != "HEAD" and ctype.endswith("json"):
            try:
                instance = json.loads(body)
            except ValueError as e:
                errors.append(f"body is not JSON ({e}): {body[:200]!r}")
            else:
                schema = content[ctype].get("schema", {})
                errors += [f"body {m}" for m in self.validate(schema, instance)]
        for name, header in resp.get("headers", {}).items():
            value = headers.get(name.lower())
            if value is None:
                continue
            schema = resolve(self.doc, header).get("schema", {})
            instance = int(value) if resolve(self.doc, schema).get("type") == "integer" and \
                re.fullmatch(r"-?[0-9]+", value) else value
            errors += [f"header {name}: {m}" for m in self.validate(schema, instance)]
        if "x-request-id" not in headers:
            errors.append("no X-Request-Id header")
        return [f"{method} {path} {status}: {e}" for e in errors]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("openapi")
    ap.add_argument("answer_log")
    ap.add_argument("--min-answers", type=int, default=1,
                    help="fail when fewer answers were recorded (the tests did not record)")
    args = ap.parse_args()
    doc = load_document(args.openapi)
    jsonschema.Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})
    checker = Checker(doc)
    failures, count = [], 0
    try:
        with open(args.answer_log, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                count += 1
                try:
                    answer = json.loads(line)
                except ValueError as e:
                    failures.append(f"{args.answer_log}:{lineno}: not a JSON line ({e})")
                    continue
                failures += checker.check(answer)
    except FileNotFoundError:
        pass
    for key, n in sorted(checker.seen.items()):
        print(f"{n:6d}  {key}")
    print(f"{count} answers checked against {args.openapi}: {len(failures)} failures")
    if count < args.min_answers:
        failures.append(f"only {count} answers recorded (at least {args.min_answers} expected): "
                        "did the integration tests run with RECGATE_ANSWER_LOG set?")
    for msg in failures[:200]:
        print("FAIL " + msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
