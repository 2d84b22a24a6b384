"""loopline's release, shown by `loopline --version` and in GET /openapi.json (pyproject.toml's
`version`; tests/unit/test_openapi.py keeps them equal). Here, not read from the installed
package's metadata: a Lambda function ships the code without it."""

VERSION = "0.1.0"
