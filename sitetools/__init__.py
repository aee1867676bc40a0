"""Build and test machinery of the GPT Notes site (not part of the gptnotes package).

- :mod:`sitetools.fences` finds every code fence of a Markdown page, nested ones included,
  and groups the Python ones into chains (a fence and its ``continuation`` fences).
- :mod:`sitetools.runner` runs a chain the way a reader would and records what each fence prints.
- :mod:`sitetools.figures` makes the site's pictures from the gptnotes package.
- :mod:`sitetools.mkdocs_hooks` ties them into the MkDocs build (outputs under snippets,
  figures, the page of common misconceptions, the version stamp).
"""
