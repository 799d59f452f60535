"""Static checks of webapp/: no external URLs, no HTML-from-strings APIs, CSP-clean HTML.

These back the two §11 defects "HTML injection in the UI" and "UI assets from a CDN":
the browser test shows the behaviour on data; these make sure no file even contains a
way around it (a later edit adding innerHTML fails here before any browser runs).
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEBAPP_DIR = Path(__file__).resolve().parents[2] / "webapp"
# The UI's files; __init__.py makes webapp/ the installed package scheduler_webapp.
FILES = sorted(p for p in WEBAPP_DIR.rglob("*") if p.is_file()
               and p.name != "__init__.py" and "__pycache__" not in p.parts)

FORBIDDEN = {
    "external URL": re.compile(r"https?://|(?<![:\w])//[a-z0-9.-]+\.[a-z]{2,}", re.I),
    "innerHTML": re.compile(r"innerHTML", re.I),
    "outerHTML": re.compile(r"outerHTML", re.I),
    "insertAdjacentHTML": re.compile(r"insertAdjacentHTML", re.I),
    "document.write": re.compile(r"document\s*\.\s*write"),
    "eval": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"\bnew\s+Function\s*\("),
    "string timer": re.compile(r"set(Timeout|Interval)\s*\(\s*[\"'`]"),
    "createContextualFragment": re.compile(r"createContextualFragment"),
    "DOMParser": re.compile(r"DOMParser"),
    "srcdoc": re.compile(r"srcdoc\s*="),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_webapp_has_the_expected_entry_files() -> None:
    names = {p.name for p in FILES}
    assert {"index.html", "app.js", "app.css"} <= names


VENDOR_DIR = WEBAPP_DIR / "vendor"
_COMMENT_LINE = re.compile(r"^\s*(//|/?\*)")
# An SVG's namespace name: an identifier the browser never fetches (an SVG image
# without it does not render). Left out of an .svg file only, and only this one.
_SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'


def _code(path: Path) -> str:
    """The text checked for external URLs: a vendored library's comment lines (its
    homepage, the sources of its algorithms) are left out, and an SVG's namespace name;
    everything it runs is in.
    ``test_vendored_files_are_upstream_s_own`` keeps those files unedited."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".svg":
        text = text.replace(_SVG_NAMESPACE, "", 1)
    if VENDOR_DIR not in path.parents:
        return text
    return "\n".join(line for line in text.splitlines() if not _COMMENT_LINE.match(line))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_forbidden_construct(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = {what: m.group() for what, rx in FORBIDDEN.items()
             if (m := rx.search(_code(path) if what == "external URL" else text))}
    assert found == {}, f"{path.name} contains {found}"


def test_vendored_files_are_upstream_s_own() -> None:
    """Each vendored file has the sha256 its README records (taken from the npm
    package unchanged): a local edit, or a new version without its README, fails."""
    readmes = sorted(VENDOR_DIR.glob("*/README.md"))
    assert readmes, "webapp/vendor/*/README.md"
    for readme in readmes:
        listed = dict(re.findall(r"^\| `([^`]+)` \| [^|]+\| `([0-9a-f]{64})` \|$",
                                 readme.read_text("utf-8"), re.M))
        shipped = {p.name for p in readme.parent.iterdir()} - {"README.md", "LICENSE.txt"}
        assert set(listed) == shipped and (readme.parent / "LICENSE.txt").is_file()
        for name, digest in listed.items():
            data = (readme.parent / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, name


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def _index_tags() -> _Tags:
    parser = _Tags()
    parser.feed((WEBAPP_DIR / "index.html").read_text(encoding="utf-8"))
    return parser


def test_index_has_no_inline_script_style_or_handlers() -> None:
    parsed = _index_tags()
    assert parsed.script_text == []
    assert [t for t, _ in parsed.tags if t == "style"] == []
    for tag, attrs in parsed.tags:
        bad = [a for a in attrs if a.startswith("on") or a == "style"]
        assert bad == [], f"<{tag}> has {bad}"


def test_index_loads_only_relative_local_assets() -> None:
    parsed = _index_tags()
    scripts = [a.get("src") for t, a in parsed.tags if t == "script"]
    styles = [a.get("href") for t, a in parsed.tags if t == "link" and a.get("rel") == "stylesheet"]
    assert scripts == ["app.js"]
    assert styles == ["static/vendor/uplot/uPlot.min.css", "app.css"]  # the charts', ours
    for _, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#") or _local(value).is_file(), value


def _local(url: str) -> Path:
    """The file the master serves at a relative URL: top-level files at the root,
    anything below webapp/ under static/ (master.static)."""
    return WEBAPP_DIR / url.removeprefix("./").removeprefix("static/")


def test_js_imports_resolve_to_local_modules() -> None:
    for path in WEBAPP_DIR.glob("*.js"):
        for target in re.findall(r"""\bfrom\s+["']([^"']+)["']""", path.read_text("utf-8")):
            assert target.startswith("./"), f"{path.name} imports {target}"
            assert _local(target).is_file(), f"{path.name} imports missing {target}"


def test_every_file_index_html_links_is_there() -> None:
    """Its stylesheets, icon, script and module preloads: a missing one is a 404 in
    every browser's console on every load."""
    html = (WEBAPP_DIR / "index.html").read_text(encoding="utf-8")
    linked = re.findall(r'(?:href|src)="([^"#]+)"', html)
    assert "favicon.svg" in linked and "app.js" in linked
    assert len([h for h in linked if h.endswith(".js")]) >= 10
    missing = [h for h in linked if not (WEBAPP_DIR / h.removeprefix("static/")).is_file()]
    assert missing == []
