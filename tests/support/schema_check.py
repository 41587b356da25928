"""Validates JSON documents against a JSON Schema (draft 2020-12), one per line.

Started once by tests/support/schema.rs: reads the schema's path from argv, then answers each
line of stdin (a JSON document) with one line of stdout, a JSON list of the errors found
(empty when the document conforms). An independent implementation of JSON Schema (the
`jsonschema` package), so the schema, the writer and the reader cannot drift together.
"""
import json
import sys

import jsonschema

with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

for line in sys.stdin:
    doc = json.loads(line)
    errors = [
        f"{e.message} at /{'/'.join(str(p) for p in e.absolute_path)}"
        for e in validator.iter_errors(doc)
    ]
    sys.stdout.write(json.dumps(errors) + "\n")
    sys.stdout.flush()
