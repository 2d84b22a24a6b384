"""The dev server's outbox page: every entry, newest first, escaped, with clickable http(s) links."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from loopline.embedded import outbox_page

APPROVAL = "http://127.0.0.1:8080/approvals/tok_ABC-123?x=1&y=2"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links, self.headings, self.text = [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href"))
        self._in_h2 = self._in_h2 or tag == "h2"
        if tag == "h2":
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_h2:
            self.headings[-1] += data


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def entry(kind, at, request, result=None, task="t", run="r-1"):
    return {"type": kind, "at": at, "task_id": task, "run_id": run, "request": request,
            "result": result or {"message_id": f"local-{at}"}}


ENTRIES = [  # as outbox.entries() gives them: oldest first
    entry("email", "2026-01-01T10:00:00.000Z",
          {"from": "loopline@localhost", "to": ["cfo@example.com"], "cc": [], "bcc": [], "reply_to": [],
           "subject": "<script>alert(1)</script> Approve?", "html": False, "attachments": [],
           "body": f"Please decide: {APPROVAL}.\nOr see (https://example.com/wiki/Budget_(2026)) later."}),
    entry("sms", "2026-01-01T10:00:01.000Z", {"to": "+15551234567", "body": "Code 42 <b>now</b>", "from": None}),
    entry("email", "2026-01-01T10:00:02.000Z",
          {"from": "loopline@localhost", "to": ["a@example.com", "b@example.com"], "cc": ["c@example.com"],
           "bcc": [], "reply_to": [], "subject": "Digest", "html": True, "attachments": [],
           "body": '<h1>Digest</h1><p>Read <a href="https://example.com/r?a=1&amp;b=2">the report</a>.</p>'
                   '<a href="javascript:alert(1)">bad</a>'}),
    entry("voice", "2026-01-01T10:00:03.000Z", {"to": "+15551234567", "message": "Hello", "voice": "default"}),
    entry("llm", "2026-01-01T10:00:04.000Z",
          {"model": "m", "prompt": "Summarise http://example.org/doc", "system_message": None},
          {"text": "[local llm] Summarise"}),
]


def test_every_entry_newest_first_with_its_fields():
    page = parse(outbox_page.render(ENTRIES))
    assert [h.split("]")[0] for h in page.headings] == ["[llm", "[voice", "[email", "[sms", "[email"]
    text = "".join(page.text)
    for expected in ("cfo@example.com", "a@example.com, b@example.com", "c@example.com", "+15551234567",
                     "2026-01-01T10:00:00.000Z", "r-1", "Code 42 <b>now</b>", "5 messages, newest first"):
        assert expected in text
    assert page.headings[-1] == "[email] <script>alert(1)</script> Approve?"


def test_everything_is_escaped_and_there_is_no_script():
    html = outbox_page.render(ENTRIES)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>now</b>" not in html
    page = parse(html)
    assert "script" not in page.tags and "b" not in page.tags


def test_links_in_bodies_are_clickable_and_only_http():
    page = parse(outbox_page.render(ENTRIES))
    links = [href for href in page.links if href.startswith("http")]
    assert APPROVAL in links  # trailing "." left out, "&" escaped in the markup and back in the href
    assert "https://example.com/wiki/Budget_(2026)" in links  # balanced parentheses kept, the outer one not
    assert "https://example.com/r?a=1&b=2" in links  # from an HTML mail's <a href>
    assert "http://example.org/doc" in links
    assert not any(href.startswith("javascript:") for href in page.links)
    assert f'href="{APPROVAL.replace("&", "&amp;")}"' in outbox_page.render(ENTRIES)


def test_a_long_body_is_cut_but_every_link_is_listed():
    body = "x" * (outbox_page.EXCERPT + 50) + " https://example.com/late"
    page = parse(outbox_page.render([entry("sms", "2026-01-01T00:00:00.000Z", {"to": "+15551234567",
                                                                              "body": body})]))
    assert "https://example.com/late" in page.links
    assert "…" in "".join(page.text)


def test_empty_and_filtered():
    page = parse(outbox_page.render([], kind="sms"))
    text = "".join(page.text)
    assert "No messages yet." in text and "0 messages of type sms" in text
    hostile = outbox_page.render([], kind="<img src=x>")
    assert "<img" not in hostile


def test_find_links_and_linkify():
    assert outbox_page.find_links("see https://a.example/x, and http://b.example/y!") == [
        "https://a.example/x", "http://b.example/y"]
    assert outbox_page.linkify("go: https://a.example/?q=<1>") == (
        'go: <a href="https://a.example/?q=" rel="noreferrer">https://a.example/?q=</a>&lt;1&gt;')
    assert outbox_page.linkify("just https:// nothing") == "just https:// nothing"


@pytest.mark.parametrize("accept, html", [
    ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", True),  # Chromium
    ("text/html", True),
    ("text/html, application/json", True),
    ("application/json", False),
    ("*/*", False),
    ("", False),
    (None, False),
    ("application/json, text/html;q=0.5", False),
    ("text/html;q=0", False),
    ("text/html;q=oops", False),
])
def test_wants_html(accept, html):
    headers = {"accept": accept} if accept is not None else {}
    assert outbox_page.wants_html(headers) is html
    assert outbox_page.wants_html({"Accept": accept} if accept is not None else None) is html


def test_response_is_html_and_not_cached():
    reply = outbox_page.response(ENTRIES)
    assert reply["statusCode"] == 200
    assert reply["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert reply["headers"]["Cache-Control"] == "no-store"
    assert reply["body"].startswith("<!doctype html>")
