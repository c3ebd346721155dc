"""Opens every page of the built site in headless Chromium and checks it.

    python docs/scripts/check_site.py site/ [--screenshots DIR]

Serves the built site on 127.0.0.1 (nothing else is reachable: Chromium
runs with background networking off), loads each page with
`chromium --headless --dump-dom` and lets its scripts run (MathJax
included), then fails when

- a page does not load (Chromium fails, the DOM is empty, the server
  answers an error);
- the rendered DOM still holds raw TeX delimiters (`\\(`, `\\)`, `\\[`,
  `\\]`, `$$`, `$...$`) in its text outside code, or a MathJax error, or a
  page whose HTML holds formulas shows no typeset formula;
- an internal link, image, script or stylesheet is broken (missing file or
  missing `#anchor`), or a page loads a script, stylesheet, image or font
  from another host (the site must work without network).

Exit status 0 when every page passes; the report lists each failure.
Chromium is Debian's `chromium` package (`.ci/run` installs it).
"""

import argparse
import concurrent.futures
import functools
import html.parser
import http.server
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)
# Text that MathJax leaves untouched by design: code, scripts, the typeset
# math itself.
SKIPPED_TAGS = {"script", "style", "pre", "code", "textarea", "noscript",
                "mjx-container", "svg", "template", "kbd", "samp"}
RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|(?<![\\\w])\$(?=\S)[^$\n]{1,200}?(?<=\S)\$"
)
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input",
             "link", "meta", "param", "source", "track", "wbr"}
# Hidden copies of a notebook cell's source for the copy button
# (mkdocs-jupyter): code, not prose.
SKIPPED_CLASSES = {"clipboard-copy-txt"}
# The formulas arithmatex leaves for MathJax.
MATH_IN_HTML = re.compile(r'class="arithmatex"')


class _DomScan(html.parser.HTMLParser):
    """Visible text (outside SKIPPED_TAGS), ids, links and resources."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text = []
        self.ids = set()
        self.links = []      # (kind, url)
        self.math = 0        # typeset formulas
        self.math_errors = 0
        self._open = []      # (tag, inside a skipped element)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if "name" in attrs and tag == "a":
            self.ids.add(attrs["name"])
        if tag == "mjx-container":
            self.math += 1
        if tag == "mjx-merror":
            self.math_errors += 1
        if tag == "a" and attrs.get("href"):
            self.links.append(("link", attrs["href"]))
        elif tag in ("img", "script", "iframe", "source") and attrs.get("src"):
            self.links.append(("resource", attrs["src"]))
        elif tag == "link" and attrs.get("href") and (
            attrs.get("rel") in ("stylesheet", "icon", "preload",
                                 "modulepreload")
        ):
            self.links.append(("resource", attrs["href"]))
        if tag in VOID_TAGS:
            return
        classes = set((attrs.get("class") or "").split())
        skipping = bool(self._open and self._open[-1][1]) or (
            tag in SKIPPED_TAGS or bool(classes & SKIPPED_CLASSES)
        )
        self._open.append((tag, skipping))

    def handle_endtag(self, tag):
        # Close up to the matching open tag (the DOM dump is well formed).
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        if not (self._open and self._open[-1][1]):
            self.text.append(data)


def scan(markup):
    parser = _DomScan()
    parser.feed(markup)
    return parser


def raw_tex(text):
    """The raw TeX fragments left in `text` (with some context)."""
    found = []
    for match in RAW_TEX.finditer(text):
        start = max(0, match.start() - 30)
        found.append(text[start:match.end() + 30].replace("\n", " "))
    return found


def holds_math(source):
    """Whether a built page's HTML (before MathJax runs) holds formulas:
    arithmatex output, or TeX delimiters in its visible prose (a
    notebook's markdown cells)."""
    return bool(MATH_IN_HTML.search(source)) or bool(
        raw_tex(" ".join(scan(source).text))
    )


def pages(site):
    return sorted(
        path for path in site.rglob("*.html")
        if not path.relative_to(site).parts[0] == "assets"
        and path.name != "404.html"
    )


def page_url(base, site, path):
    rel = path.relative_to(site).as_posix()
    if rel.endswith("index.html"):
        rel = rel[: -len("index.html")]
    return base + "/" + rel


def _serve(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def dump_dom(chromium, url, screenshot=None, budget_ms=15000):
    profile = tempfile.mkdtemp(prefix="check-site-chromium-")
    try:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--virtual-time-budget={budget_ms}"]
        if screenshot:
            command += [f"--screenshot={screenshot}",
                        "--window-size=1280,1600"]
        else:
            command += ["--dump-dom"]
        result = subprocess.run(command + [url], capture_output=True,
                                text=True, timeout=120)
        return result.returncode, result.stdout, result.stderr
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class _Targets:
    """HTTP status and ids of the site's own URLs, fetched once each."""

    def __init__(self, base):
        self.base = base
        self._cache = {}
        self._lock = threading.Lock()

    def get(self, url):
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read()
                status = response.status
                kind = response.headers.get_content_type()
        except urllib.error.HTTPError as error:
            status, body, kind = error.code, b"", ""
        except OSError as error:
            status, body, kind = str(error), b"", ""
        ids = None
        if kind == "text/html":
            ids = scan(body.decode("utf-8", "replace")).ids
        with self._lock:
            self._cache[url] = (status, ids)
        return status, ids


def check_page(chromium, site, base, targets, path):
    url = page_url(base, site, path)
    problems = []
    status, _ = targets.get(url)
    if status != 200:
        return url, [f"the server answered {status}"], 0
    code, dom, stderr = dump_dom(chromium, url)
    if code != 0 or "<body" not in dom:
        return url, [f"Chromium could not load it (exit {code}): "
                     f"{stderr.strip()[-300:]}"], 0
    page = scan(dom)
    text = " ".join(page.text)
    for fragment in raw_tex(text):
        problems.append(f"raw TeX in the rendered page: ...{fragment}...")
    if page.math_errors:
        problems.append(f"{page.math_errors} MathJax error(s)")
    source = path.read_text(encoding="utf-8")
    if holds_math(source) and page.math == 0:
        problems.append("the page holds formulas but none was typeset")
    for kind, link in page.links:
        absolute = urllib.parse.urljoin(url, link)
        parts = urllib.parse.urlsplit(absolute)
        if parts.scheme in ("mailto", "javascript", "data", "blob"):
            continue
        if not absolute.startswith(base):
            if kind == "resource":
                problems.append(f"loads {link} from another host")
            continue
        target = urllib.parse.urlunsplit(parts._replace(fragment=""))
        status, ids = targets.get(target)
        if status != 200:
            problems.append(f"broken {kind} {link} ({status})")
        elif parts.fragment and ids is not None:
            anchor = urllib.parse.unquote(parts.fragment)
            if target == url.split("#")[0]:
                ids = ids | page.ids
            if anchor not in ids:
                problems.append(f"broken anchor {link}")
    return url, problems, page.math


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", help="the built site (mkdocs build -d DIR)")
    parser.add_argument("--jobs", type=int, default=max(
        1, min(4, os.cpu_count() or 1)))
    parser.add_argument(
        "--screenshots", metavar="DIR",
        help="also write PNG screenshots of a few pages into DIR")
    args = parser.parse_args(argv)
    site = pathlib.Path(args.site).resolve()
    chromium = find_chromium()
    if chromium is None:
        print("error: no chromium found (apt-get install -y chromium)",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    server, base = _serve(site)
    targets = _Targets(base)
    failures = 0
    formulas = 0
    all_pages = pages(site)
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = [
                pool.submit(check_page, chromium, site, base, targets, path)
                for path in all_pages
            ]
            for future in futures:
                url, problems, math = future.result()
                formulas += math
                rel = url[len(base):]
                if problems:
                    failures += 1
                    print(f"FAIL {rel}")
                    for problem in problems:
                        print(f"     {problem}")
                else:
                    print(f"ok   {rel} ({math} formulas)")
        if args.screenshots:
            out = pathlib.Path(args.screenshots)
            out.mkdir(parents=True, exist_ok=True)
            for rel, name in SCREENSHOTS:
                target = out / name
                dump_dom(chromium, f"{base}/{rel}", screenshot=str(target))
                print(f"screenshot {rel} -> {target}")
    finally:
        server.shutdown()
    print(f"{len(all_pages)} pages, {formulas} typeset formulas, "
          f"{failures} failing, {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


SCREENSHOTS = (
    ("", "home.png"),
    ("concepts/#the-scoring-function", "concepts-formula.png"),
    ("notebooks/01_neural_attention_tutorial/", "notebook-formula.png"),
    ("api/layers/", "api-layers.png"),
    ("results/", "results.png"),
)


if __name__ == "__main__":
    sys.exit(main())
