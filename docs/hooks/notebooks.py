"""mkdocs hook: publish the tutorial notebooks of `notebooks/`.

The tutorial notebooks live in `notebooks/` at the repository root, where
`make test` executes them. This hook adds every `notebooks/*.ipynb` to the
documentation files as `notebooks/<name>.ipynb` (page URL
`notebooks/<name>/`), so the site renders the stored notebooks without a copy
or a symlink under `docs/`; and fills the `Tutorials` section of `nav` with them.

mkdocs-jupyter turns `.ipynb` files into pages in its own `on_files`, so this
hook's `on_files` runs first (higher priority). The files keep a real
`src_dir` (the repository root) because mkdocs-jupyter reads a notebook from
its `abs_src_path`.

This file sits under `docs/` but `exclude_docs` in `mkdocs.yml` keeps it out
of the site.
"""

import json
import pathlib

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

NOTEBOOKS_DIR = "notebooks"
TUTORIALS = "Tutorials"


def _repo_root(config):
    return pathlib.Path(config.config_file_path).resolve().parent


def _title(path):
    """The notebook's first markdown H1, else its file name."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def on_config(config):
    # `mkdocs serve` rebuilds when a notebook changes.
    notebooks = _repo_root(config) / NOTEBOOKS_DIR
    if notebooks.is_dir():
        config.watch.append(str(notebooks))
    # Every notebook is a page of the `Tutorials` section of `nav` (listed
    # empty in mkdocs.yml), in file-name order.
    root = _repo_root(config)
    pages = [
        {_title(path): path.relative_to(root).as_posix()}
        for path in sorted(notebooks.glob("*.ipynb"))
    ]
    for item in config.nav or []:
        if isinstance(item, dict) and TUTORIALS in item:
            item[TUTORIALS] = pages
    return config


def _stored_errors(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [
        i for i, cell in enumerate(notebook["cells"])
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


@event_priority(100)
def on_files(files, config):
    root = _repo_root(config)
    for path in sorted((root / NOTEBOOKS_DIR).glob("*.ipynb")):
        # The site shows stored outputs (no execution); one that holds an
        # error fails the build rather than publishing a broken tutorial.
        errors = _stored_errors(path)
        if errors:
            raise PluginError(
                f"{path.name}: stored outputs of cell(s) {errors} hold an "
                "error; re-run the notebook (keras-neural-attention "
                "notebooks) and commit the executed copy."
            )
        src_uri = path.relative_to(root).as_posix()
        if files.get_file_from_path(src_uri) is None:
            files.append(
                File(
                    src_uri,
                    src_dir=str(root),
                    dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls,
                )
            )
    return files
