"""A real Chromium against a real master (``python -m master`` on real etcd): pages of
other origins cannot change anything, a rebound name reaches nothing, and the master's
own UI still logs in, creates a job and kills its run on a real worker.

The attacker's page is served by a second small HTTP server, on 127.0.0.2 (another
site) or on another port of 127.0.0.1 (the same site, another origin). Whether each of
its requests was refused is read where it counts: the master's own metrics (403 per
route), etcd's keys and the API. Issue #10: a master without a token stored a job sent
as a cross-origin form POST to /job/save.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import services
from chromium_kit import TIMEOUT_MS, launched_chromium, sync_api  # skips without playwright
from e2e_harness import ROOT, ServiceProcess
from e2e_jobpage import see_the_job_page, see_the_job_page_follow_its_events

pytestmark = pytest.mark.slow

WEBAPP = ROOT / "webapp"
VICTIM = {"command": "echo victim", "cronExpr": "@yearly"}
START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 40.0


@dataclass
class Master:
    process: ServiceProcess
    url: str
    port: int
    etcd_endpoint: str
    prefix: str
    headers: dict[str, str]

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=10)

    def etcd_keys(self, directory: str) -> list[str]:
        """Keys under ``<prefix><directory>``, read with etcdctl: etcd itself is the judge."""
        done = subprocess.run(
            ["etcdctl", f"--endpoints=http://{self.etcd_endpoint}", "get", "--prefix",
             "--keys-only", self.prefix + directory],
            capture_output=True, text=True, timeout=30, check=True,
            env={**os.environ, "ETCDCTL_API": "3"})
        return [line for line in done.stdout.splitlines() if line]

    def http_requests(self) -> dict[tuple[str, str, str], float]:
        """scheduler_master_http_requests_total by (method, route, status)."""
        with self.api() as client:
            text = client.get("/metrics").text
        pattern = re.compile(r'^scheduler_master_http_requests_total\{method="([^"]*)",'
                             r'route="([^"]*)",status="([^"]*)"\} (\S+)$', re.M)
        return {(m, r, s): float(v) for m, r, s, v in pattern.findall(text)}


def start_master(tmp_path: Path, etcd_endpoint: str, prefix: str, db_url: str,
                 *extra: str, headers: dict[str, str] | None = None) -> Master:
    port = services.free_port()
    args = ["--etcd", etcd_endpoint, "--prefix", prefix, "--db", db_url,
            "--port", str(port), "--webapp", str(WEBAPP), *extra]
    process = ServiceProcess("master", args, tmp_path / "master.log", "master").start()
    master = Master(process, f"http://127.0.0.1:{port}", port, etcd_endpoint, prefix,
                    headers or {})
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.alive(), process.log_tail()
        try:
            if httpx.get(master.url + "/healthz", timeout=2).status_code == 200:
                return master
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise AssertionError(f"the master did not become healthy\n{process.log_tail()}")


@pytest.fixture
def open_master(tmp_path, etcd_endpoint, etcd_prefix) -> Iterator[Master]:
    """A master with no token, as `make run` starts it on loopback."""
    master = start_master(tmp_path, etcd_endpoint, etcd_prefix, f"sqlite:///{tmp_path}/r.db")
    try:
        yield master
    finally:
        master.process.terminate()
        assert "Traceback" not in master.process.log_tail(100_000)


# ---------------------------------------------------------------- the attacker's page


def attack_page(master_url: str) -> str:
    """Every write a page can send to another origin without the master's consent."""
    form_job = json.dumps({"name": "form-planted", "command": "id", "cronExpr": "* * * * *"})
    return f"""<!doctype html><meta charset="utf-8"><title>cute cats</title>
<form id="plant" method="POST" action="{master_url}/job/save">
  <input type="hidden" name="job" value='{form_job}'>
</form>
<script>
const M = {json.dumps(master_url)};
const job = (name) => JSON.stringify({{name, command: "id", cronExpr: "* * * * *"}});
const form = (fields) => new URLSearchParams(fields);
async function attempt(label, url, init) {{
  try {{
    const answer = await fetch(url, init);
    return [label, `answered ${{answer.type}} ${{answer.status}}`];
  }} catch (error) {{
    return [label, `failed ${{error.name}}`];
  }}
}}
window.attack = async () => {{
  const json = {{"Content-Type": "application/json"}};
  const multipart = new FormData();
  multipart.append("job", job("fetch-multipart"));
  return [
    await attempt("put-json-cors", M + "/api/v1/jobs/fetch-put",
                  {{method: "PUT", headers: json, body: job("fetch-put")}}),
    await attempt("put-json-no-cors", M + "/api/v1/jobs/fetch-put-nc",
                  {{method: "PUT", mode: "no-cors", headers: json, body: job("fetch-put-nc")}}),
    await attempt("post-form-cors", M + "/job/save",
                  {{method: "POST", body: form({{job: job("fetch-form")}})}}),
    await attempt("post-form-no-cors", M + "/job/save",
                  {{method: "POST", mode: "no-cors", body: form({{job: job("fetch-form-nc")}})}}),
    await attempt("post-multipart-no-cors", M + "/job/save",
                  {{method: "POST", mode: "no-cors", body: multipart}}),
    await attempt("post-pause-no-cors", M + "/api/v1/jobs/victim/pause",
                  {{method: "POST", mode: "no-cors"}}),
    await attempt("post-run-no-cors", M + "/api/v1/jobs/victim/run",
                  {{method: "POST", mode: "no-cors", body: ""}}),
    await attempt("post-kill-json-no-cors", M + "/api/v1/jobs/victim/kill",
                  {{method: "POST", mode: "no-cors", headers: json, body: "{{}}"}}),
    await attempt("post-delete-form-no-cors", M + "/job/delete",
                  {{method: "POST", mode: "no-cors", body: form({{name: "victim"}})}}),
    await attempt("delete-cors", M + "/api/v1/jobs/victim", {{method: "DELETE"}}),
  ];
}};
</script>"""


class _PageHandler(BaseHTTPRequestHandler):
    page = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.page.encode()
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class AttackerSite:
    """The attacker's page on ``host``, on a port of its own."""

    def __init__(self, host: str, page: str) -> None:
        handler = type("Handler", (_PageHandler,), {"page": page})
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://{host}:{self._server.server_address[1]}/"

    def __enter__(self) -> AttackerSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# Sent by the browser (no preflight, or none needed), each refused 403 by the master.
SENT = {("POST", "/job/save"): 4,  # form, cors, no-cors, multipart
        ("POST", "/api/v1/jobs/<path:name>/pause"): 1,
        ("POST", "/api/v1/jobs/<path:name>/run"): 1,
        ("POST", "/api/v1/jobs/<path:name>/kill"): 1,
        ("POST", "/job/delete"): 1}


@pytest.mark.parametrize("attacker_host", ["127.0.0.2", "127.0.0.1"],
                         ids=["cross-site", "same-site-other-port"])
def test_pages_of_other_origins_change_nothing(open_master, attacker_host):
    with open_master.api() as api:
        assert api.put("/api/v1/jobs/victim", json=VICTIM).status_code == 201
    before = open_master.http_requests()
    with AttackerSite(attacker_host, attack_page(open_master.url)) as site, \
            launched_chromium() as chromium:
        page = chromium.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(site.url)
        outcomes = dict(page.evaluate("() => attack()"))
        with page.expect_navigation() as navigation:  # the classic: a form, submitted
            page.evaluate("document.getElementById('plant').submit()")
        assert navigation.value.status == 403
        assert "own origin" in navigation.value.json()["msg"]
    # Preflighted (JSON PUT, DELETE: the master answers no preflight) or not allowed in
    # no-cors (PUT): never sent. A form POST in cors mode is sent, but its answer hidden.
    for label in ("put-json-cors", "put-json-no-cors", "post-form-cors", "delete-cors"):
        assert outcomes[label] == "failed TypeError", outcomes
    for label in ("post-form-no-cors", "post-pause-no-cors", "post-delete-form-no-cors"):
        assert outcomes[label] == "answered opaque 0", outcomes  # sent; the page sees nothing

    after = open_master.http_requests()
    for (method, route), count in SENT.items():
        refused = after.get((method, route, "403"), 0) - before.get((method, route, "403"), 0)
        assert refused == count, (method, route, after)
    changed = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert all(status in ("403", "405") or method == "GET"
               for method, _, status in changed), changed  # 405: the preflights
    assert open_master.etcd_keys("jobs/") == [open_master.prefix + "jobs/victim"]
    assert open_master.etcd_keys("trigger/") == [] and open_master.etcd_keys("killer/") == []
    with open_master.api() as api:
        listed = api.get("/api/v1/jobs").json()["jobs"]
    assert [(j["name"], j["paused"]) for j in listed] == [("victim", False)]


def test_a_rebound_name_reaches_nothing(open_master):
    """DNS rebinding, as the browser does it: evil.example resolves to the master."""
    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    with launched_chromium(rules) as chromium:
        page = chromium.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        rebound = f"http://evil.example:{open_master.port}"
        answer = page.goto(rebound + "/")
        assert answer is not None and answer.status == 421
        assert answer.json()["error"]["code"] == "misdirected_request"
        # The page is now "same-origin" with the master, as far as the browser knows:
        statuses = page.evaluate("""async () => [
            (await fetch("/api/v1/jobs")).status,
            (await fetch("/healthz")).status,
            (await fetch("/job/save", {method: "POST", body: new URLSearchParams(
                {job: JSON.stringify({name: "rebound", command: "id", cronExpr: "@daily"})})}
            )).status,
        ]""")
        assert statuses == [421, 421, 421]
        own = page.goto(open_master.url + "/healthz")  # the master's own name still works
        assert own is not None and own.status == 200
    assert open_master.etcd_keys("jobs/") == []


# ---------------------------------------------------------------- the master's own UI


def test_the_masters_own_ui_logs_in_creates_a_job_and_kills_its_run(
        tmp_path, etcd_endpoint, etcd_prefix, mysql_url, make_cluster):
    token = "ui-e2e-" + os.urandom(8).hex()
    token_file = tmp_path / "token"
    descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    master = start_master(tmp_path, etcd_endpoint, etcd_prefix, mysql_url,
                          "--token-file", str(token_file),
                          headers={"Authorization": f"Bearer {token}"})
    try:
        make_cluster(mysql_url).add_worker("ui-w1")
        with launched_chromium() as chromium:
            page = chromium.new_page(viewport={"width": 1360, "height": 860})
            page.set_default_timeout(TIMEOUT_MS)
            _drive_the_ui(page, master.url, token)
        with master.api() as api:
            runs = api.get("/api/v1/jobs/ui-sleeper/runs").json()["runs"]
        # The run the UI killed, and the one killed while the job page watched.
        assert [r["status"] for r in runs] == ["killed", "killed"], runs
        refused = {k: v for k, v in master.http_requests().items() if k[2] in ("403", "421")}
        assert refused == {}  # the UI's own requests all passed the guard
    finally:
        master.process.terminate()


def _drive_the_ui(page: sync_api.Page, url: str, token: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Before the token: 401s. No 404: the UI links its icon (favicon.svg).
    page.on("response", lambda r: r.status >= 400 and r.status != 401
            and errors.append(f"{r.status} {r.url}"))
    page.on("dialog", lambda dialog: dialog.accept())  # the kill's confirmation
    page.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text
            and errors.append(m.text))  # the charts too run under the master's CSP
    expect = sync_api.expect

    page.goto(url + "/")  # first load answers 401: the token dialog opens
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    page.fill("#token-input", token)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()

    # The landing page: the dashboard's counts and charts (uPlot under the master's CSP).
    expect(page.locator(".count[data-count=workers] dd")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#chart-runs canvas")).to_have_count(1)
    expect(page.locator("#chart-lateness canvas")).to_have_count(1)
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("button", name="New job").click()
    page.fill("#field-name", "ui-sleeper")
    page.fill("#field-command", "sleep 300")
    page.fill("#field-cronExpr", "@yearly")
    page.get_by_role("button", name="Save").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("Created job ui-sleeper")
    row = page.locator("table.jobs tbody tr").filter(
        has=page.locator("td.name", has_text="ui-sleeper"))
    expect(row).to_be_visible()
    expect(row.locator("td.schedule .words")).to_have_text("at 00:00 on day 1 of January")
    expect(row.locator("td.last-run")).to_have_text("—")  # no run yet

    row.get_by_role("button", name="Run now").click()
    expect(notice).to_contain_text("Triggered ui-sleeper: run")
    expect(row.locator("td", has_text="1 running")).to_have_count(
        1, timeout=RUN_TIMEOUT_S * 1000)  # the UI refreshes every 5 s
    row.get_by_role("button", name="Kill").click()
    expect(notice).to_contain_text("Kill requested for ui-sleeper")
    # The killed run becomes the job's last run in the list (the master's grouped query).
    expect(row.locator("td.last-run .badge-killed")).to_have_text(
        "killed", timeout=RUN_TIMEOUT_S * 1000)

    row.get_by_role("button", name="Runs").click()
    expect(page.locator(".badge-killed")).to_have_count(1, timeout=RUN_TIMEOUT_S * 1000)
    see_the_job_page(page)
    see_the_job_page_follow_its_events(page, url, token)
    assert errors == [], errors


# ---------------------------------------------------------------- the seed's own page

# What the seed's page does with jQuery's $.ajax (form-encoded bodies, the
# X-Requested-With header jQuery adds to same-origin requests), from a page the master
# serves itself: the original's "webapp" setting points the master at such a page.
SEED_JS = """
function ajax(method, url, fields) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8");
    xhr.onload = () => resolve([xhr.status, JSON.parse(xhr.responseText)]);
    xhr.send(fields ? new URLSearchParams(fields).toString() : null);
  });
}
window.save = async (job) => ({
  saved: await ajax("POST", "/job/save", {job: JSON.stringify(job)}),
  listed: await ajax("GET", "/job/list"),
});
window.remove = async (name) => ({
  killed: await ajax("POST", "/job/kill", {name}),
  log: await ajax("GET", "/job/log?name=" + encodeURIComponent(name)),
  deleted: await ajax("POST", "/job/delete", {name}),
});
"""


def test_the_seeds_page_served_by_the_master_still_drives_the_seed_endpoints(
        tmp_path, etcd_endpoint, etcd_prefix):
    webapp = tmp_path / "seed-webapp"
    webapp.mkdir()
    (webapp / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><title>crontab</title>'
        '<script src="/seed.js"></script>')  # external: the CSP forbids inline scripts
    (webapp / "seed.js").write_text(SEED_JS)
    master = start_master(tmp_path, etcd_endpoint, etcd_prefix, f"sqlite:///{tmp_path}/r.db",
                          "--webapp", str(webapp))
    job = {"name": "seed-page", "command": "echo hi", "cronExpr": "*/5 * * * * *"}
    try:
        with launched_chromium() as chromium:
            page = chromium.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(master.url + "/")
            page.wait_for_function("() => typeof window.remove === 'function'")
            answers = page.evaluate("(job) => window.save(job)", job)
            stored = master.etcd_keys("jobs/")
            answers |= page.evaluate("(name) => window.remove(name)", job["name"])
    finally:
        master.process.terminate()
    for step in ("saved", "listed", "killed", "log", "deleted"):
        status, body = answers[step]
        assert (status, body["errno"], body["msg"]) == (200, 0, "success"), (step, answers)
    assert answers["saved"][1]["data"] is None  # no previous job
    assert job in answers["listed"][1]["data"]
    assert answers["deleted"][1]["data"]["name"] == "seed-page"
    assert stored == [etcd_prefix + "jobs/seed-page"]  # it was really stored
    assert master.etcd_keys("jobs/") == []  # and really deleted
