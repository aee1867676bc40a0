// Render the maths that pymdownx.arithmatex leaves in the page as \( ... \) and \[ ... \].
// KaTeX is served from this site (assets/vendor/katex); nothing comes from a CDN.
(function () {
  function render() {
    renderMathInElement(document.body, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "\\[", right: "\\]", display: true },
        { left: "\\(", right: "\\)", display: false },
      ],
      throwOnError: true,
    });
  }
  // Material's instant navigation would replace the page without reloading scripts;
  // the site does not enable it, so one render on load is enough.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
