"""A fake GitHub REST API for the CI-glue tests, seeded from recorded responses in tests/data/github/.

It answers the endpoints cronplan.github uses, keeps state (comments, issues) so a test can check what
was created or edited, records every request, and paginates with GitHub's ``Link`` header. It plugs in
as an ``httpx.MockTransport`` or behind a real HTTP server on 127.0.0.1 (for subprocess tests).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

DATA = Path(__file__).parent / "data" / "github"
API = "https://api.github.com"
REPO = "acme/ops-cron"
REPO_ID = 712934551
TOKEN = "ghs_testtoken0123456789abcdefABCDEF"
BOT = "github-actions[bot]"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeGitHub:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    commit_pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int | None = None
    fail: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)
    base: str = API
    seen: list[Seen] = field(default_factory=list)
    next_id: int = 2484600001

    # -- seams -------------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve this fake on 127.0.0.1; yields the base URL to put in GITHUB_API_URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                content = self.rfile.read(length) if length else b""
                request = httpx.Request(
                    self.command,
                    f"{fake.base}{self.path}",
                    headers=dict(self.headers.items()),
                    content=content,
                )
                response = fake.handle(request)
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self.base
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    # -- views for assertions ----------------------------------------------------------------------
    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method != "GET"]

    def bot_marker_comments(self, pr: int) -> list[dict[str, Any]]:
        return [
            c
            for c in self.comments.get(pr, [])
            if c["user"]["login"] == BOT and "<!-- cronplan:intent=" in c["body"]
        ]

    # -- the API -----------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = json.loads(request.content) if request.content else None
        self.seen.append(
            Seen(
                request.method,
                url.path,
                query,
                body,
                {k.lower(): v for k, v in request.headers.items()},
            )
        )
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _json(401, {"message": "Bad credentials", "status": "401"})
        prefix = urlsplit(self.base).path.rstrip("/")
        rel = url.path[len(prefix) :] if url.path.startswith(prefix) else url.path
        queued = self.fail.get((request.method, rel))
        if queued:
            status, payload, headers = queued.pop(0)
            return _json(status, payload, headers)
        path = re.sub(rf"^/repositories/{REPO_ID}/", f"/repos/{REPO}/", rel)
        if m := re.fullmatch(rf"/repos/{REPO}/issues/(\d+)/comments", path):
            number = int(m.group(1))
            if request.method == "GET":
                return self._page(rel, query, self.comments.get(number, []))
            if request.method == "POST":
                return _json(201, self._new_comment(number, body["body"]))
        m = re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", path)
        if m and request.method == "PATCH":
            for comments in self.comments.values():
                for c in comments:
                    if c["id"] == int(m.group(1)):
                        c["body"] = body["body"]
                        c["updated_at"] = "2026-11-26T14:30:00Z"
                        return _json(200, c)
            return _json(404, load("error_404.json"))
        if m := re.fullmatch(rf"/repos/{REPO}/commits/([0-9a-f]+)/pulls", path):
            return self._page(rel, query, self.commit_pulls.get(m.group(1), []))
        if path == f"/repos/{REPO}/issues":
            if request.method == "GET":
                items = [i for i in self.issues if i["state"] == query.get("state", "open")]
                if "creator" in query:
                    items = [i for i in items if i["user"]["login"] == query["creator"]]
                return self._page(rel, query, items)
            if request.method == "POST":
                issue = copy.deepcopy(load("open_issues_with_drift.json")[1])
                issue.update(number=60, title=body["title"], body=body["body"])
                issue["html_url"] = f"https://github.com/{REPO}/issues/60"
                self.issues.append(issue)
                return _json(201, issue)
        if m := re.fullmatch(rf"/repos/{REPO}/issues/(\d+)", path):
            for issue in self.issues:
                if issue["number"] == int(m.group(1)) and request.method == "PATCH":
                    issue.update(body)
                    return _json(200, issue)
            return _json(404, load("error_404.json"))
        return _json(404, load("error_404.json"))

    def _page(
        self, path: str, query: dict[str, str], items: list[dict[str, Any]]
    ) -> httpx.Response:
        size = self.page_size or int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
        last = max(1, -(-len(items) // size))
        chunk = items[(page - 1) * size : page * size]
        links = []
        # GitHub's own next links use the numeric /repositories/{id}/ form.
        link_path = path.replace(f"/repos/{REPO}/", f"/repositories/{REPO_ID}/")
        if page < last:
            links.append(f'<{self.base}{link_path}?per_page={size}&page={page + 1}>; rel="next"')
            links.append(f'<{self.base}{link_path}?per_page={size}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<{self.base}{link_path}?per_page={size}&page=1>; rel="first"')
            links.append(f'<{self.base}{link_path}?per_page={size}&page={page - 1}>; rel="prev"')
        headers = {"Link": ", ".join(links)} if links else {}
        return _json(200, chunk, headers)

    def _new_comment(self, number: int, body: str) -> dict[str, Any]:
        comment = copy.deepcopy(load("comment_created.json"))
        comment["id"] = self.next_id
        comment["body"] = body
        comment["html_url"] = f"https://github.com/{REPO}/pull/{number}#issuecomment-{self.next_id}"
        comment["issue_url"] = f"{API}/repos/{REPO}/issues/{number}"
        self.next_id += 1
        self.comments.setdefault(number, []).append(comment)
        return comment


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def seeded(page_size: int | None = 2) -> FakeGitHub:
    """PR #42 with seven recorded comments (the bot's plan is the sixth), its merge commit, issues."""
    fake = FakeGitHub(page_size=page_size)
    fake.comments[42] = load("pr_comments.json")
    fake.commit_pulls["e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b"] = load("commit_pulls_merged.json")
    fake.commit_pulls["a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"] = load(
        "commit_pulls_open_and_merged.json"
    )
    fake.issues = load("open_issues_with_drift.json")
    return fake
