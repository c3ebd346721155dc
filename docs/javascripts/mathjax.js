// MathJax configuration. MathJax itself is served by this site
// (assets/mathjax/, installed from npm by `npm ci --prefix docs`).
//
// - Markdown pages: pymdownx.arithmatex (generic mode) wraps each formula in
//   an element of class "arithmatex" with \( \) or \[ \] delimiters.
// - Notebook pages (mkdocs-jupyter): markdown cells keep Jupyter's $...$ and
//   $$...$$ inside elements of class "jp-RenderedMarkdown".
// Only those elements are typeset; code and the rest of the page are left
// alone (a "$" in a shell command is not math).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
};

document$.subscribe(() => {
  if (!window.MathJax.startup || !window.MathJax.typesetPromise) {
    return; // first load: MathJax typesets the page when it starts
  }
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
