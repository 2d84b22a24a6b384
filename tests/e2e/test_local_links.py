"""`loopline run --local` serves approval and callback links as the embedded default does: the same
status and the same answer for each request (before, each answered 502 `Must contain a metric
namespace` though its decision was applied: local mode lacked the template's Powertools settings)."""

from __future__ import annotations

import json

from tests.e2e.cli_process import Running, call

FLOW = """
workflow:
  metadata: {id: links}
  tasks:
    - id: ask
      type: approval
      config: {approvers: [boss@example.com], title: "Go?"}
    - id: hook
      type: callback
      depends_on: [ask]
    - id: done
      type: python
      depends_on: [hook]
      config: {code: "result = tasks['hook']['output']"}
"""


def answers(tmp_path, mode: list[str]) -> list[tuple[int, object]]:
    """Each request's status and JSON answer, the run's id and the tokens written out of them."""
    path = tmp_path / "links.yaml"
    path.write_text(FLOW)
    running = Running(["run", str(path), "--json", *mode])
    seen: list[tuple[int, object]] = []
    try:
        approval = running.link("approval")
        seen.append(call(approval))  # the request, as JSON
        seen.append(call(approval, {"decision": "APPROVED", "comments": "fine"}))
        seen.append(call(approval, {"decision": "APPROVED"}))  # used: refused
        callback = running.link("callback")
        seen.append(call(callback, {"paid": True}))
        code, out = running.finish()
    finally:
        running.kill()
    assert code == 0, "".join(running.stderr)
    run = json.loads(out)
    assert run["tasks"]["done"]["output"] == {"paid": True}  # the callback body reached the next task
    tokens = {approval.rsplit("/", 1)[1]: "<approval>", callback.rsplit("/", 1)[1]: "<callback>",
              run["run_id"]: "<run>"}

    def plain(text: str) -> object:
        for secret, name in tokens.items():
            text = text.replace(secret, name)
        return _without_times(json.loads(text))

    return [(status, plain(text)) for status, text in seen]


def _without_times(value: object) -> object:
    if isinstance(value, dict):
        return {k: "<time>" if k in ("deadline", "requested_at", "decided_at") else _without_times(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_local_mode_answers_the_links_as_the_embedded_default(tmp_path):
    local = answers(tmp_path, ["--local"])
    assert [status for status, _ in local] == [200, 200, 410, 200], local
    assert local == answers(tmp_path, [])


def test_local_mode_serves_the_console_too(tmp_path):
    """Each route goes to its own function's handler: the console's pages answer HTML, not the API's 404."""
    from urllib.parse import urlsplit

    from tests.e2e.test_dev_server import request

    path = tmp_path / "links.yaml"
    path.write_text(FLOW)
    running = Running(["run", str(path), "--json", "--local"])
    try:
        approval = running.link("approval")
        base = "{0.scheme}://{0.netloc}".format(urlsplit(approval))
        status, headers, page = request("GET", f"{base}/console/approvals", headers={"Accept": "text/html"})
        assert status == 200 and headers["Content-Type"].startswith("text/html"), (status, page[:300])
        assert '<li class="approval"' in page and "boss@example.com" in page
        assert call(approval, {"decision": "APPROVED"})[0] == 200
        assert call(running.link("callback"), {"paid": True})[0] == 200
        code, _ = running.finish()
    finally:
        running.kill()
    assert code == 0, "".join(running.stderr)
