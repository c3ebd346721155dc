// MathJax configuration. MathJax itself is served by this site
// (assets/mathjax/, installed from npm by `npm ci --prefix docs`).
//
// Only the elements that hold formulas are typeset:
// - Markdown pages: pymdownx.arithmatex (generic mode) wraps each formula in
//   an element of class "arithmatex", with \( \) or \[ \] delimiters.
// - Notebook pages (mkdocs-jupyter): markdown cells keep Jupyter's $...$
//   and $$...$$ inside elements of class "jp-RenderedMarkdown" (in <p>,
//   <li>, ... below it), and in the table of contents built from their
//   headings.
// Code (<pre>, <code>) and the rest of the page are left alone: a "$" in a
// shell command is not math.
// The table of contents repeats the notebooks' headings, formulas included.
const MATH_SELECTOR =
  ".arithmatex, .jp-RenderedMarkdown, .md-nav--secondary .md-nav__link";

function typesetPage() {
  const elements = Array.from(document.querySelectorAll(MATH_SELECTOR));
  if (!elements.length) {
    return Promise.resolve();
  }
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  return MathJax.typesetPromise(elements);
}

window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  startup: {
    typeset: false,
    pageReady() {
      return MathJax.startup.defaultPageReady().then(typesetPage);
    },
  },
};

// Material's instant navigation swaps the page content without a reload.
document$.subscribe(() => {
  if (window.MathJax && window.MathJax.typesetPromise) {
    typesetPage();
  }
});
