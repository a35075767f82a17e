"""Hostile input cannot write outside the data directories or run code.

``expose --filename`` is resolved (``..``, absolute paths, symbolic links) and
must stay inside the actor's ``data_dir`` or the camera's image directory.
Image names from templates cannot leave their directory whatever the camera
name, and bad camera names are refused with the configuration. Templates in
the configuration are refused when the configuration is read or the camera
system is built, or refused when rendered, and never run code.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import errors, fails, fits_files, ok, wait_for

from actor.actor import CameraActor
from actor.config import ConfigError, validate_config
from actor.daemon import ConfigUsageError, preflight
from camera_core import CameraError, ImageNamer, TemplateError


def all_files(root: Path) -> list[Path]:
    """Every file under ``root`` (symbolic links included)."""
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


@pytest.fixture
async def sandbox(tmp_path):
    """An actor writing under tmp_path/data, and a directory outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    actor = await start_actor(actor_config(tmp_path))
    yield actor, tmp_path / "data", outside
    await actor.stop()


# expose --filename


ESCAPES = [
    "../../outside/x.fits",
    "../../../../../../../../tmp/{tmp}/outside/x.fits",
    "{outside}/x.fits",
    "sub/../../../outside/x.fits",
    "~/camactor-escape-test.fits",
    "link/x.fits",  # a directory link inside sim1/ pointing outside
    "trap.fits",  # a file link inside sim1/ pointing outside
]


@pytest.mark.parametrize("filename", ESCAPES)
async def test_filename_cannot_leave_the_data_dir(sandbox, client, filename):
    actor, data, outside = sandbox
    (data / "sim1").mkdir(parents=True, exist_ok=True)
    (data / "sim1" / "link").symlink_to(outside, target_is_directory=True)
    (data / "sim1" / "trap.fits").symlink_to(outside / "trap-target.fits")
    filename = filename.format(outside=outside, tmp=outside.parent.name)
    before = all_files(data)
    start = time.monotonic()
    command = await fails(client, actor, f"expose sim1 0.05 -f '{filename}'")
    assert time.monotonic() - start < 1.0
    message = errors(command)
    assert "outside the data directory" in message, message
    assert f"file names must stay inside {data}" in message  # names the root
    assert list(outside.iterdir()) == []
    assert not (Path.home() / "camactor-escape-test.fits").exists()
    assert all_files(data) == before  # nothing written, not even inside
    await ok(client, actor, "expose sim1 0.05")  # the camera is not stuck


@pytest.mark.parametrize("filename", ["", ".", "..", "sub/", "a\0b.fits"])
async def test_filename_must_name_a_file(sandbox, client, filename):
    actor, data, _ = sandbox
    text = f"expose sim1 0.05 -f '{filename}'"
    command = await fails(client, actor, text)
    assert "not a file name" in errors(command) or "is a directory" in errors(command)
    assert fits_files(data.parent, "sim1") == []


async def test_filename_inside_is_written(sandbox, client):
    actor, data, _ = sandbox
    command = await ok(client, actor, "expose sim1 0.05 -f sub/one.fits")
    assert (data / "sim1" / "sub" / "one.fits").is_file()
    # Absolute, and relative with '..', are fine while inside data_dir.
    await ok(client, actor, f"expose sim1 0.05 -f {data}/other/two.fits")
    assert (data / "other" / "two.fits").is_file()
    await ok(client, actor, "expose sim1 0.05 -f ../three.fits")
    assert (data / "three.fits").is_file()
    # A link that stays inside is followed, and the real path is reported.
    (data / "sim1" / "inner").symlink_to(data / "other", target_is_directory=True)
    command = await ok(client, actor, "expose sim1 0.05 -f inner/four.fits")
    (written,) = [
        r.message["filename"] for r in command.replies if "filename" in r.message
    ]
    assert written["path"] == str(data / "other" / "four.fits")
    assert (data / "other" / "four.fits").is_file()


async def test_a_link_swapped_in_during_the_exposure_is_refused(sandbox, client):
    """The name is checked on arrival and again when the file is created."""
    actor, data, outside = sandbox
    sim1 = actor.camera_system.get_camera(name="sim1")
    (data / "sim1").mkdir(parents=True, exist_ok=True)
    running = asyncio.create_task(
        send(client, actor, "expose sim1 1 -f sub/x.fits", time_limit=20)
    )
    await wait_for(lambda: sim1.progress.phase.value == "integrating")
    # Checked and accepted; now the directory becomes a link to elsewhere.
    (data / "sim1" / "sub").symlink_to(outside, target_is_directory=True)
    command = await running
    assert list(outside.iterdir()) == []  # nothing written outside
    (spooled,) = keywords(command, "filename")
    assert spooled["spooled"] and Path(spooled["path"]).is_file()
    sidecars = [
        json.loads(p.read_text()) for p in Path(spooled["path"]).parent.glob("*.json")
    ]
    assert any("outside" in (sidecar.get("error") or "") for sidecar in sidecars)


# Image names from templates.


def test_namer_refuses_names_that_leave_the_directory(tmp_path):
    namer = ImageNamer("{camera.name}-{num:04d}.fits", dirname=str(tmp_path))
    for name in ("../evil", "a/b", "/etc/passwd"):
        with pytest.raises(CameraError, match="not a plain file name"):
            namer(SimpleNamespace(name=name, uid="U"))
    namer = ImageNamer("{num:04d}.fits", dirname=f"{tmp_path}/{{camera.uid}}")
    for uid in ("..", "../..", "x/../../y"):
        with pytest.raises(CameraError, match="leaves the configured directory"):
            namer(SimpleNamespace(name="cam", uid=uid))
    # A uid with '/' but no '..' stays inside: a subdirectory.
    path = namer(SimpleNamespace(name="cam", uid="host:1/camera/0"))
    assert path.parent == tmp_path / "host:1" / "camera" / "0"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("basename", "dirname"),
    [("sub/{num}.fits", "."), ("{num}.fits", "../up"), ("{num}.fits", "a/../../b")],
)
def test_namer_templates_cannot_hold_paths(basename, dirname):
    with pytest.raises(TemplateError):
        ImageNamer(basename, dirname=dirname)


async def test_device_camera_with_a_path_name_cannot_escape(sandbox, client):
    """A camera whose name came from a device, not the config (e.g. INDI)."""
    actor, data, outside = sandbox
    await actor.camera_system.add_camera(name="x/../../../outside/evil", uid="SIM-9")
    try:
        command = await fails(client, actor, "expose 'x/../../../outside/evil' 0.05")
        assert "not a plain file name" in errors(command)
        assert list(outside.iterdir()) == []
        assert not (data / "x").exists()
    finally:
        await actor.camera_system.remove_camera(uid="SIM-9")


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "..", ".hidden", "-f", "two words", "tab\there", ""]
)
def test_bad_camera_names_are_refused(tmp_path, name):
    config = actor_config(tmp_path)
    config["cameras"][name] = config["cameras"].pop("sim2")
    with pytest.raises(ConfigError, match="is not a valid camera name"):
        validate_config(config)


def test_good_camera_names_are_accepted(tmp_path):
    config = actor_config(tmp_path)
    for name in ("ccd", "CAM_1", "sim-2.b", "0", "_x+y"):
        config["cameras"][name] = {"uid": f"U-{name}"}
    assert set(validate_config(config)["cameras"]) >= {"ccd", "CAM_1", "_x+y"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("image_name", "sub/{camera.name}-{num}.fits"), ("image_dir", "../{camera.name}")],
)
def test_image_templates_in_config_cannot_hold_paths(tmp_path, key, value):
    config = actor_config(tmp_path)
    config["actor"][key] = value
    with pytest.raises(ConfigError, match=f"actor.{key} is not a valid template"):
        validate_config(config)


# Hostile templates in the configuration.

#: Templates that would create the file PWNED if their code ran.
HOSTILE = [
    "{__import__('os').system('touch PWNED')}-{num}.fits",
    "{camera.__class__.__init__.__globals__['os'].system('touch PWNED')}-{num}.fits",
    "{camera.spool_dir.joinpath('PWNED').touch()}-{num}.fits",
    "{open('PWNED', 'w')}-{num}.fits",
    "{camera.camera_system.recover()}-{num}.fits",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_templates_in_config_are_refused(tmp_path, template, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = template.replace("PWNED", str(tmp_path / "PWNED"))
    config = actor_config(tmp_path)
    config["actor"]["image_name"] = template
    with pytest.raises(ConfigError, match=r"actor\.image_name is not a valid template"):
        validate_config(config)
    # A camera's own image_namer is not the actor section's: camera_core
    # refuses it when the camera system is built (the launcher's preflight).
    config = validate_config(actor_config(tmp_path))
    config["cameras"]["sim1"]["image_namer"] = {"basename": template, "dirname": "."}
    with pytest.raises(ConfigUsageError, match="invalid image_namer"):
        preflight(config)
    with pytest.raises(CameraError, match="invalid image_namer"):
        CameraActor.from_config(config)
    assert not (tmp_path / "PWNED").exists()


async def test_template_refused_when_rendered_is_inert(tmp_path, client):
    """A template that passes the checks but reaches further when rendered."""
    config = actor_config(tmp_path)
    config["actor"]["image_name"] = (
        "{camera.image_namer.get_dirname(camera)}-{num}-$(touch PWNED).fits"
    )
    config = validate_config(config)
    actor = await start_actor(config)
    try:
        command = await fails(client, actor, "expose sim1 0.05")
        assert "calls get_dirname() on a ImageNamer reached through attributes" in (
            errors(command)
        )
        await ok(client, actor, "status")
    finally:
        await actor.stop()
    assert not list(tmp_path.rglob("*PWNED*"))
    assert not list(Path.cwd().glob("*PWNED*"))
