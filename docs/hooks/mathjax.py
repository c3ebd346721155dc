"""mkdocs hook: serve MathJax from the built site.

The pages load `assets/mathjax/tex-mml-chtml.js` (see `extra_javascript` in
`mkdocs.yml`), never a CDN, so formulas render without network access.
MathJax is installed from the npm registry at build time
(`npm ci --prefix docs`, pinned in `docs/package.json` and
`docs/package-lock.json`); this hook adds its browser build
(`docs/node_modules/mathjax/es5/`: the component, its fonts and the TeX
extensions it loads on demand) to the site's files under `assets/mathjax/`.
"""

import json
import pathlib

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

DEST = "assets/mathjax"


def _mathjax_dir(config):
    docs = pathlib.Path(config.docs_dir)
    return docs / "node_modules" / "mathjax" / "es5", docs / "package.json"


def on_files(files, config):
    source, manifest = _mathjax_dir(config)
    wanted = json.loads(manifest.read_text())["dependencies"]["mathjax"]
    installed = source.parent / "package.json"
    if not installed.is_file():
        raise PluginError(
            "MathJax is not installed: run `npm ci --prefix docs` (npm "
            "registry) before `mkdocs build`; the site serves MathJax "
            "itself and never loads it from a CDN."
        )
    version = json.loads(installed.read_text())["version"]
    if version != wanted:
        raise PluginError(
            f"docs/node_modules has MathJax {version}, docs/package.json "
            f"pins {wanted}: run `npm ci --prefix docs`."
        )
    for path in sorted(source.rglob("*")):
        if path.is_file():
            rel = path.relative_to(source).as_posix()
            files.append(
                File.generated(config, f"{DEST}/{rel}", abs_src_path=str(path))
            )
    return files
