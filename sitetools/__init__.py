"""Build and test machinery of the GPT Notes site (not part of the gptnotes package).

- :mod:`sitetools.fences` finds every code fence of a Markdown page, nested ones included,
  and groups the Python ones into chains (a fence and its ``continuation`` fences).
- :mod:`sitetools.runner` runs a chain the way a reader would and records what each fence prints.
- :mod:`sitetools.figures` makes the site's pictures from the gptnotes package.
- :mod:`sitetools.prebuild` runs them before the build, in parallel, and writes what the
  pages include or link (:mod:`sitetools.generated`); :mod:`sitetools.outputs`, a
  Markdown extension, shows the outputs under the snippets and the version stamp, in any
  tool that reads mkdocs.yml (:mod:`sitetools.builders` builds and compares them).
"""
