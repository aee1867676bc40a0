"""The package from the hosted site, and the release's dry run.

- The built site holds, at ``wheels/gptnotes-<version>-py3-none-any.whl``, the wheel of
  exactly the code its pages ran with (the same bytes as a fresh build of the sources).
- The home page and chapter 0 show an "Install" box whose line installs that file from the
  site's address; ``pip install gptnotes`` appears beside it only once ``extra.on_pypi`` is set.
- Served on 127.0.0.1, the wheel installs from its URL into a fresh virtual environment, and a
  first program runs there with the installed copy.
- ``scripts/release-check`` (what .github/workflows/release.yml runs before publishing) builds
  the sdist and the wheel, checks them with twine, installs the wheel into a fresh
  environment and runs a program there.

The fresh environments borrow their runtime dependencies (torch...) from the copy-paste
test's environment through symbolic links (``sitetools.wheel.fresh_venv``): no download, a
second to install; the gptnotes package in them comes from the wheel under test only.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

import gptnotes
from sitetools import browser, wheel
from tests import test_copy_paste
from tests.site_files import ROOT

# The copy-paste test's environment (built once, shared): it lends its dependencies.
reader_python = test_copy_paste.reader_python

VERSION = gptnotes.__version__
PAGES_WITH_THE_BOX = ("index.html", "gpt-in-one-page/index.html")
# ``pip install <url>`` as the page shows it (Pygments splits it into spans; tags removed).
_INSTALL = re.compile(r"pip install (\S+/wheels/gptnotes-[^\s<]+\.whl)")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(page: Path) -> str:
    """A built page's text without tags (code blocks become their plain lines)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def _site_url(site: Path) -> str:
    """The address the site was built for (its home page's canonical link: ``site_url``)."""
    m = re.search(r'<link rel="canonical" href="([^"]+)"', (site / "index.html").read_text(encoding="utf-8"))
    assert m, "the home page has no canonical link"
    return m[1]


# --------------------------------------------------------------------------------------
# The wheel in the built site
# --------------------------------------------------------------------------------------

@pytest.mark.site
def test_the_site_holds_the_wheel_of_exactly_the_code_the_pages_ran_with(built_site: Path, tmp_path: Path):
    served = built_site / wheel.site_path(VERSION)
    assert served.is_file(), f"no wheel at {wheel.site_path(VERSION)} in the built site"
    assert [p.name for p in (built_site / wheel.SITE_DIR).iterdir()] == [wheel.file_name(VERSION)]
    # Its package files are those of the gptnotes that this process (like the build) imports...
    wheel.check_matches(served, Path(gptnotes.__file__).resolve().parent, VERSION)
    # ... and it is byte for byte the wheel a fresh build of the sources makes now.
    fresh = wheel.build(tmp_path / "fresh")
    assert _sha256(served.read_bytes()) == _sha256(fresh.read_bytes())


def test_a_wheel_that_is_not_the_code_the_pages_ran_with_is_refused(tmp_path: Path):
    built = wheel.cached()
    package = tmp_path / "gptnotes"
    shutil.copytree(Path(gptnotes.__file__).resolve().parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    wheel.check_matches(built, package, VERSION)  # an exact copy passes
    (package / "linear.py").write_text((package / "linear.py").read_text() + "\n# edited after the build\n")
    (package / "extra.py").write_text("x = 1\n")
    (package / "corpus" / "tiny_corpus.txt").unlink()
    with pytest.raises(wheel.WheelError) as err:
        wheel.check_matches(built, package, "9.9.9")
    message = str(err.value)
    assert "the wheel is version 0.1.0 but the pages ran with gptnotes 9.9.9" in message.replace(VERSION, "0.1.0")
    assert "linear.py: differs between the wheel and the package the pages ran with" in message
    assert "extra.py: the pages ran with it, the wheel lacks it" in message
    assert "corpus/tiny_corpus.txt: in the wheel, not in the package the pages ran with" in message


def test_the_build_stops_on_a_wheel_that_is_not_the_code_the_pages_ran_with(monkeypatch, tmp_path):
    from sitetools import prebuild

    def refuse():
        raise wheel.WheelError("the wheel gptnotes-0.1.0-py3-none-any.whl is not the code the pages ran with")

    monkeypatch.setattr(wheel, "for_site", refuse)
    monkeypatch.setattr(prebuild.generated, "DIR", tmp_path / "generated")
    with pytest.raises(prebuild.PrebuildError, match="is not the code the pages ran with"):
        prebuild.write_outputs(tmp_path / "docs", {"site_url": "http://h/", "nav": []})


def test_python_m_sitetools_wheel_puts_it_in_a_site_folder(tmp_path: Path, capsys):
    """The build step on its own (the project moves build steps out of MkDocs hooks)."""
    assert wheel.main(["--site-dir", str(tmp_path), "--site-url", "https://example.org/gpt-notes/"]) == 0
    copied = tmp_path / "wheels" / f"gptnotes-{VERSION}-py3-none-any.whl"
    assert copied.read_bytes() == wheel.cached().read_bytes()
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"pip install https://example.org/gpt-notes/wheels/gptnotes-{VERSION}-py3-none-any.whl")
    # The same from the command line (the help only: the work is the same function).
    proc = subprocess.run([sys.executable, "-m", "sitetools.wheel", "--help"],
                          check=False, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "--site-dir" in proc.stdout, proc.stderr


# --------------------------------------------------------------------------------------
# The install box
# --------------------------------------------------------------------------------------

@pytest.mark.site
def test_home_page_and_chapter_0_show_the_line_that_installs_the_sites_wheel(built_site: Path):
    site_url = _site_url(built_site)
    expected = f"pip install {site_url}wheels/gptnotes-{VERSION}-py3-none-any.whl"
    for name in PAGES_WITH_THE_BOX:
        page = built_site / name
        text = _text(page)
        assert 'class="admonition info"' in page.read_text(encoding="utf-8")
        box = text[text.index("Install\nEvery program on this site"):]
        assert expected in box, f"{name}: the install box lacks {expected!r}"
        assert "pip install .\n" in box, f"{name}: the clone route is missing"
        assert "pip install gptnotes\n" not in text, f"{name}: offers PyPI, which is off in mkdocs.yml"
    for page in built_site.rglob("*.html"):
        assert "gn-install" not in page.read_text(encoding="utf-8"), f"{page}: an install marker was not replaced"


def test_pypi_is_off_until_the_package_is_there():
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^extra:\n(?:  .*\n)*?  on_pypi: false$", text, flags=re.MULTILINE), "extra.on_pypi: false"


def test_the_install_box_is_made_from_the_site_url_and_the_version():
    box = wheel.install_box("https://example.org/notes/", "1.2.3")
    assert "    pip install https://example.org/notes/wheels/gptnotes-1.2.3-py3-none-any.whl\n" in box
    assert "pip install gptnotes\n" not in box and "    pip install .\n" in box
    with_pypi = wheel.install_box("https://example.org/notes", "1.2.3", on_pypi=True)
    assert "    pip install https://example.org/notes/wheels/gptnotes-1.2.3-py3-none-any.whl\n" in with_pypi
    assert with_pypi.index("Or from PyPI") < with_pypi.index("    pip install gptnotes\n") < with_pypi.index("pip install .")
    # Placed where the marker is, indented like it (inside a tab or a box).
    text, count = wheel.place_install_box("Before.\n\n    <!-- gn-install -->\n\nAfter.\n", "http://h/", "1.2.3")
    assert count == 1 and text.startswith('Before.\n\n    !!! info "Install"\n\n        Every program')
    assert "        pip install http://h/wheels/gptnotes-1.2.3-py3-none-any.whl\n" in text and text.endswith("\n\nAfter.\n")
    assert wheel.place_install_box("No box.\n", "http://h/", "1.2.3") == ("No box.\n", 0)
    with pytest.raises(wheel.WheelError, match="set site_url"):
        wheel.place_install_box("<!-- gn-install -->\n", "", "1.2.3")


def test_a_long_site_address_breaks_the_line_rather_than_the_page():
    """No code block may scroll sideways: a line over 80 characters goes on after a backslash."""
    url = "https://an-organisation-with-a-long-name.github.io/gpt-notes-from-scratch/"
    box = wheel.install_box(url, "0.1.0")
    assert (f"    pip install \\\n      {url}wheels/gptnotes-0.1.0-py3-none-any.whl\n") in box
    assert max(len(line) for line in box.splitlines() if line.startswith("    pip")) <= wheel.LINE + 4
    short = wheel.install_box("http://127.0.0.1:8000/", "0.1.0")
    assert "    pip install http://127.0.0.1:8000/wheels/gptnotes-0.1.0-py3-none-any.whl\n" in short


# --------------------------------------------------------------------------------------
# Installing it from the served site
# --------------------------------------------------------------------------------------

@pytest.mark.site
@pytest.mark.slow
def test_the_wheel_installs_from_the_served_site_into_a_fresh_venv(built_site: Path, reader_python: Path, tmp_path: Path):
    site_url = _site_url(built_site)
    m = _INSTALL.search(_text(built_site / "index.html"))
    assert m and m[1].startswith(site_url), "the home page shows no install line for the site's wheel"
    path = m[1][len(site_url):]  # what the reader's line asks for, from the site's root
    assert path == wheel.site_path(VERSION)
    built = wheel.cached()  # the wheel of the sources (a fresh build makes the same bytes: above)
    with browser.serve(built_site) as base:
        url = base + path
        with urllib.request.urlopen(url, timeout=30) as response:
            served = response.read()
        assert _sha256(served) == _sha256(built.read_bytes()), "the served file is not the wheel of the sources"
        venv = tmp_path / "venv"
        python = wheel.fresh_venv(venv, deps_from=reader_python)
        wheel.pip_install(python, "-q", "--no-index", url)  # from the URL, nothing else
    work = tmp_path / "work"
    work.mkdir()
    printed = wheel.run_smoke(python, work)
    site_packages = wheel.purelib(python).resolve()
    assert printed["gptnotes"] == VERSION
    assert printed["file"] == str(site_packages / "gptnotes" / "__init__.py"), printed["file"]
    assert printed["command"] == "True"  # the `gptnotes` command came with it
    # pip records where it got the package: the served URL.
    (dist_info,) = site_packages.glob("gptnotes-*.dist-info")
    assert json.loads((dist_info / "direct_url.json").read_text())["url"] == url
    # What was installed is, file for file, the package the tests (and the pages) run.
    assert wheel.package_files(site_packages / "gptnotes") == wheel.package_files(Path(gptnotes.__file__).resolve().parent)
    # It is the only gptnotes there: the lent dependencies bring none.
    others = [p.name for p in site_packages.iterdir() if "gptnotes" in p.name.lower() and p.is_symlink()]
    assert others == []


# --------------------------------------------------------------------------------------
# The release
# --------------------------------------------------------------------------------------

RELEASE_CHECK = ROOT / "scripts" / "release-check"


@pytest.mark.slow
def test_release_check_builds_and_checks_the_distributions(reader_python: Path, tmp_path: Path):
    dist = tmp_path / "dist"
    proc = subprocess.run([sys.executable, str(RELEASE_CHECK), "--no-isolation", "--deps-from", str(reader_python),
                           "--dist", str(dist), "--expect-version", f"v{VERSION}"],
                          check=False, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"release-check: version {VERSION}"
    assert any("twine check --strict: both pass" in line for line in lines), proc.stdout
    assert any(line.startswith("release-check: installed in a fresh environment") for line in lines), proc.stdout
    assert lines[-1] == "release-check: ok"
    assert sorted(p.name for p in dist.iterdir()) == [f"gptnotes-{VERSION}-py3-none-any.whl", f"gptnotes-{VERSION}.tar.gz"]
    # The wheel built from the sdist is the very wheel the site hands out.
    assert (dist / wheel.file_name(VERSION)).read_bytes() == wheel.cached().read_bytes()


def test_release_check_refuses_a_tag_that_names_another_version(tmp_path: Path):
    proc = subprocess.run([sys.executable, str(RELEASE_CHECK), "--expect-version", "v9.9.9", "--dist", str(tmp_path)],
                          check=False, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"the tag names version v9.9.9 but the package is version {VERSION}" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # refused before building anything


def _workflow(name: str) -> dict:
    text = (ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _uses(job: dict) -> list[str]:
    return [s["uses"] for s in job.get("steps", []) if "uses" in s]


@pytest.mark.parametrize("name", ["ci.yml", "pages.yml", "release.yml"])
def test_every_action_is_pinned_to_a_full_commit(name: str):
    for job_name, job in _workflow(name)["jobs"].items():
        for uses in _uses(job):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{name}: {job_name} uses {uses}"


def test_the_release_workflow_builds_checks_and_publishes_by_trusted_publishing():
    flow = _workflow("release.yml")
    assert flow["on"] == {"push": {"tags": ["v*"]}}
    assert flow["permissions"] == {}  # nothing by default; each job asks for what it needs
    build, publish = flow["jobs"]["build"], flow["jobs"]["publish"]
    assert build["permissions"] == {"contents": "read"}
    assert publish["permissions"] == {"id-token": "write"}  # the only job that may mint a token
    assert publish["needs"] == "build" and publish["environment"]["name"] == "pypi"
    runs = " ".join(s.get("run", "") for s in build["steps"])
    assert "scripts/release-check" in runs and '--expect-version "${GITHUB_REF_NAME}"' in runs
    assert "--dist dist" in runs
    assert any(u.startswith("pypa/gh-action-pypi-publish@") for u in _uses(publish))
    assert not any(u.startswith("actions/checkout@") for u in _uses(publish))  # publishes only what build checked
    for job in flow["jobs"].values():
        for step_ in job["steps"]:
            assert "password" not in step_.get("with", {}), "trusted publishing needs no token"
