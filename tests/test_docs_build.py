"""The reference manual builds without a warning and covers the whole actor.

Sphinx runs as ``make docs`` runs it (``-W --keep-going``), into a temporary
directory; the pages must then name every command, keyword, configuration key,
launcher command and public API object, and show the tutorial's driver.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

import actor.actor
import actor.config
import camera_core
from actor.__main__ import camactor
from actor.commands import build_parser
from camera_core.simfaults import FAULTS
from camera_core.simulator import SIMULATOR_DEFAULTS, SimulatedCamera

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = (
    "index",
    "install",
    "configuration",
    "launcher",
    "commands",
    "keywords",
    "tutorial/index",
    "api/camera_core",
    "api/actor",
)
#: What ``make docs`` runs (it builds into docs/_build/html).
SPHINX = (
    sys.executable,
    "-m",
    "sphinx",
    "-W",
    "--keep-going",
    "-E",
    "-q",
    "-b",
    "html",
)
BUILD_LIMIT = 300  # seconds; about 25 s on a busy 2-core machine

pytestmark = pytest.mark.timeout(BUILD_LIMIT + 60)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The HTML manual, built once for this module."""
    out = tmp_path_factory.mktemp("html")
    start = time.monotonic()
    proc = subprocess.run(
        [*SPHINX, "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_LIMIT,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr}"
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    print(f"docs built in {elapsed:.1f} s")
    return out


def page(site: Path, name: str) -> str:
    return (site / f"{name}.html").read_text()


def text(markup: str) -> str:
    """The visible text of some HTML (tags removed, entities decoded)."""
    markup = re.sub(r"<(script|style).*?</\1>", "", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_every_page_is_built(site):
    for name in PAGES:
        assert (site / f"{name}.html").is_file(), name
    index = page(site, "index")
    for name in PAGES[1:]:
        assert f'href="{name}.html"' in index, f"{name} is not in the table of contents"


def test_commands_page_has_every_command_and_its_help(site):
    markup = page(site, "commands")
    visible = text(markup)
    parser = build_parser(SimulatedCamera)
    names = [
        n for n in parser.commands if not getattr(parser.commands[n], "internal", 0)
    ]
    assert {"expose", "temperature", "binning", "area", "shutter", "gain"} <= set(names)
    for name in names:
        command = parser.commands[name]
        assert f'id="command-{anchor(name)}"' in markup, name
        assert f"Usage: {name} " in visible, name
        help_text = " ".join((command.help or "").split())
        assert help_text.split(".")[0] in " ".join(visible.split()), name
        for param in command.params:
            for opt in (
                getattr(param, "opts", []) if isinstance(param, click.Option) else []
            ):
                assert opt in visible, f"{name} {opt}"


def anchor(name: str) -> str:
    """The HTML id docutils makes of a label (``_`` becomes ``-``)."""
    return name.replace("_", "-")


def keyword_sections(markup: str) -> dict[str, str]:
    """The HTML of each keyword's section, by the keyword's anchor."""
    parts = re.split(r'<span id="keyword-([a-z0-9-]+)"></span>', markup)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_keywords_page_has_every_keyword_and_field(site):
    schema = json.loads(actor.actor.default_schema_path().read_text())
    sections = keyword_sections(page(site, "keywords"))
    assert list(sections) == [anchor(name) for name in schema["properties"]]
    definitions = schema.get("definitions", {})
    for name, spec in schema["properties"].items():
        section = text(sections[anchor(name)])
        assert spec.get("description", "").split(".")[0].replace("`", "") in section
        ref = spec.get("$ref", "").rsplit("/", 1)[-1]
        for field in {**definitions.get(ref, {}), **spec}.get("properties", {}):
            assert field in section, f"{name}.{field}"


def test_configuration_page_has_every_key(site):
    visible = text(page(site, "configuration"))
    schema = actor.config.CONFIG_SCHEMA["properties"]
    for section in ("actor", "indi", "alpaca"):
        for key, spec in schema[section]["properties"].items():
            assert key in visible, f"{section}.{key}"
            if "description" in spec:
                assert spec["description"] in " ".join(visible.split()), key
    for key in (*SIMULATOR_DEFAULTS, *FAULTS):
        assert key in visible, key
    assert "sim1:" in visible  # the default configuration file is shown


def test_launcher_page_has_every_command(site):
    visible = text(page(site, "launcher"))
    ctx = click.Context(camactor, info_name="camactor")
    for name in camactor.list_commands(ctx):
        assert f"camactor {name}" in visible, name
        command = camactor.get_command(ctx, name)
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, info_name=name, parent=ctx)
            for sub in command.list_commands(sub_ctx):
                assert f"camactor {name} {sub}" in visible, (name, sub)
    assert "--config" in visible and "CAMACTOR_BROKER_URL" in visible


def test_api_pages_document_the_public_api(site):
    markup = page(site, "api/camera_core")
    for name in camera_core.__all__:
        if name.startswith("__"):
            continue
        assert re.search(rf'id="camera_core\.(models\.builtin\.)?{name}"', markup), name
    assert 'id="camera_core.BaseCamera.expose"' in markup  # inherited methods
    assert 'id="camera_core.CoolerMixIn.set_temperature"' in markup
    # numpydoc renders the sections of the docstrings.
    assert "Parameters" in text(markup) and "Raises" in text(markup)
    markup = page(site, "api/actor")
    for module in (actor.actor, actor.config):
        for name in module.__all__:
            # The config schema is documented where it is defined.
            homes = (module.__name__, "actor.config_schema")
            assert any(f'id="{home}.{name}"' in markup for home in homes), name


def test_tutorial_page_shows_the_whole_driver(site):
    visible = text(page(site, "tutorial/index"))
    driver = (DOCS / "tutorial" / "driver.py").read_text()
    for line in driver.splitlines():
        assert line.strip() in visible, line
    assert "VendorLibrary" in visible and "vl_wait_exposure" in visible
