"""mkdocs hook: publish the tutorial notebooks of `notebooks/`.

The tutorial notebooks live in `notebooks/` at the repository root, where
`make test` executes them. This hook adds every `notebooks/*.ipynb` to the
documentation files as `notebooks/<name>.ipynb` (page URL
`notebooks/<name>/`), so the site renders the stored notebooks without a copy
or a symlink under `docs/`; `mkdocs.yml` lists them in `nav` by that path.

mkdocs-jupyter turns `.ipynb` files into pages in its own `on_files`, so this
hook's `on_files` runs first (higher priority). The files keep a real
`src_dir` (the repository root) because mkdocs-jupyter reads a notebook from
its `abs_src_path`.

This file sits under `docs/` but `exclude_docs` in `mkdocs.yml` keeps it out
of the site.
"""

import pathlib

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

NOTEBOOKS_DIR = "notebooks"


def _repo_root(config):
    return pathlib.Path(config.config_file_path).resolve().parent


def on_config(config):
    # `mkdocs serve` rebuilds when a notebook changes.
    notebooks = _repo_root(config) / NOTEBOOKS_DIR
    if notebooks.is_dir():
        config.watch.append(str(notebooks))
    return config


@event_priority(100)
def on_files(files, config):
    root = _repo_root(config)
    for path in sorted((root / NOTEBOOKS_DIR).glob("*.ipynb")):
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
