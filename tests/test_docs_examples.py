"""Every code example of the docs runs, on the current backend.

- the README's ```python blocks, in a fresh process that inherits
  `KERAS_BACKEND` (so the README example cannot override the backend), and
  what it prints names the backend and the shapes;
- the ```python blocks of every page under `docs/` (a page's blocks run in
  order in one namespace, as a reader would paste them);
- the ```python blocks and `>>>` examples in the docstrings of the public
  symbols (the names in each public module's `__all__`, and the public
  functions of `kernels.dispatch` and `results`).

A block whose fence line reads ```python {.no-run} (none today) is shown
but not run; the test counts how many there are so none hides.
"""

import doctest
import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = REPO_ROOT / "docs"

# ```python at any indentation (blocks inside admonitions or list items are
# indented), up to the closing fence at the same indentation.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python(?P<attrs>[^\n]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.DOTALL | re.MULTILINE,
)

PUBLIC_MODULES = (
    "keras_neural_attention",
    "keras_neural_attention.layers",
    "keras_neural_attention.ops",
    "keras_neural_attention.models",
    "keras_neural_attention.experiments",
    "keras_neural_attention.results",
    "keras_neural_attention.kernels.dispatch",
)


def python_blocks(text):
    """The runnable ```python blocks of a markdown text, dedented."""
    blocks = []
    for match in FENCE.finditer(text):
        if "no-run" in match.group("attrs"):
            continue
        blocks.append(textwrap.dedent(match.group("code")))
    return blocks


def _doc_pages():
    return sorted(
        p for p in DOCS_DIR.rglob("*.md")
        if python_blocks(p.read_text(encoding="utf-8"))
    )


def _public_objects(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name for name, value in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(value)
            and value.__module__ == module.__name__
        ]
    objects = [(f"{module_name}.{name}", getattr(module, name))
               for name in names]
    return [(name, obj) for name, obj in objects
            if not inspect.ismodule(obj)]


def _docstring_examples(obj):
    doc = inspect.getdoc(obj) or ""
    examples = python_blocks(doc)
    parser = doctest.DocTestParser()
    doctest_lines = [
        example.source for example in parser.get_examples(doc)
    ]
    if doctest_lines:
        examples.append("".join(doctest_lines))
    return examples


def _run(code, namespace, label):
    try:
        exec(compile(code, label, "exec"), namespace)
    except ModuleNotFoundError:
        raise  # conftest turns a missing extra into a skip
    except Exception as error:
        raise AssertionError(
            f"example in {label} failed: {type(error).__name__}: {error}\n"
            f"--- code ---\n{code}"
        ) from error


def test_readme_example_runs_on_this_backend_as_written():
    blocks = python_blocks((REPO_ROOT / "README.md").read_text("utf-8"))
    assert blocks, "README.md has no ```python block"
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend,
               PYTHONPATH=os.pathsep.join(
                   [str(REPO_ROOT)] + sys.path))
    for code in blocks:
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True,
            text=True, timeout=900, cwd=REPO_ROOT,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        printed = result.stdout.strip().splitlines()
        assert printed, "the README example prints nothing"
        assert printed[-1].split()[0] == backend, printed
        assert "(2, 128, 512) (2, 128, 512) (2, 8, 128, 40)" in printed[-1]


@pytest.mark.parametrize(
    "page", _doc_pages(), ids=lambda p: p.relative_to(DOCS_DIR).as_posix()
)
@pytest.mark.one_backend
def test_docs_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    namespace = {"__name__": "__docs_example__"}
    for i, code in enumerate(python_blocks(page.read_text("utf-8"))):
        _run(code, namespace,
             f"{page.relative_to(REPO_ROOT).as_posix()} block {i + 1}")


def _public_names():
    """`(module, name)` for every public symbol, without importing the
    modules that `__all__` loads lazily (models/ needs KerasHub)."""
    cases = []
    for module_name in PUBLIC_MODULES:
        cases.append((module_name, None))
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [
                name for name, value in vars(module).items()
                if not name.startswith("_") and inspect.isfunction(value)
                and value.__module__ == module.__name__
            ]
        cases.extend((module_name, name) for name in names)
    return cases


# Docstring examples that do not run as written; they live in modules this
# test does not own. strict: the test fails once an example is fixed, so the
# entry goes.
# Docstring examples known not to run, with the reason (strict xfail: an
# entry must go once its example is fixed).
KNOWN_BROKEN = {}


@pytest.mark.parametrize(
    "module_name, name", _public_names(),
    ids=lambda v: v if isinstance(v, str) else "module",
)
@pytest.mark.one_backend
def test_public_docstring_examples_run(module_name, name, tmp_path,
                                       monkeypatch, request):
    label = module_name if name is None else f"{module_name}.{name}"
    if label in KNOWN_BROKEN:
        request.applymarker(
            pytest.mark.xfail(reason=KNOWN_BROKEN[label], strict=True))
    module = importlib.import_module(module_name)
    if name is None:
        examples = python_blocks(inspect.getdoc(module) or "")
    else:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not (
            inspect.isclass(obj) or inspect.isroutine(obj)
        ):
            pytest.skip(f"{label} is a module or a constant (no docstring)")
        examples = _docstring_examples(obj)
    if not examples:
        pytest.skip(f"{label} has no example in its docstring")
    monkeypatch.chdir(tmp_path)
    for code in examples:
        _run(code, {"__name__": "__docs_example__"}, label)


def test_fence_pattern_finds_indented_blocks():
    text = (
        "Text\n\n```python\na = 1\n```\n\n!!! note\n\n    ```python\n"
        "    b = 2\n    ```\n\n```python {.no-run}\nraise SystemExit\n```\n"
    )
    assert python_blocks(text) == ["a = 1\n", "b = 2\n"]
