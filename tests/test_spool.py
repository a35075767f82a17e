"""The spool and its recovery: checksums, sidecars, races, memory, the CLI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from click.testing import CliRunner
from disk_helpers import tmpfs, verified

from actor.__main__ import camactor as camactor_cli
from actor.actor import build_camera_system
from actor.cli_recover import spool_dirs
from actor.config import validate_config
from camera_core import Exposure, ExposureWriteError
from camera_core.spool import recover, recovered_names
from camera_core.writer import write_atomic, write_hdulist

ROOT = Path(__file__).resolve().parents[1]


def frame(seed: int, shape=(40, 56)) -> fits.HDUList:
    rng = np.random.default_rng(seed)
    hdu = fits.PrimaryHDU(rng.integers(0, 60000, shape).astype(np.uint16))
    hdu.header["EXPTIME"] = (1.5 + seed, "Exposure time [s]")
    hdu.header["OBJECT"] = (f"field {seed}", "Target")
    return fits.HDUList([hdu])


def erofs(path: Path, is_spool: bool) -> None:
    if not is_spool:
        raise OSError(errno.EROFS, "Read-only file system (injected)", str(path))


async def spool_one(
    hdulist: fits.HDUList, target: Path, spool: Path, exposure_id: str = "e1"
) -> Path:
    """Spools a frame whose target refuses writes; returns the spooled file."""
    result = await write_hdulist(
        hdulist,
        target,
        retries=0,
        spool_dir=spool,
        metadata={"exposure_id": exposure_id, "camera": "cam1"},
        fault_hook=erofs,
    )
    assert result.spooled and result.sidecar.is_file()
    return result.path


async def test_recover_copies_the_original_bytes(tmp_path):
    spool, target = tmp_path / "spool", tmp_path / "data" / "a.fits"
    hdulist = frame(1)
    spooled = await spool_one(hdulist, target, spool)
    original = spooled.read_bytes()
    (result,) = recover(spool)
    assert result.recovered and result.error is None
    assert (result.camera, result.exposure_id) == ("cam1", "e1")
    assert target.read_bytes() == original
    write_atomic(hdulist, tmp_path / "reference.fits")
    assert original == (tmp_path / "reference.fits").read_bytes()
    with verified(target) as hdul:
        assert hdul[0].header["OBJECT"] == "field 1"
    assert list(spool.iterdir()) == []


async def test_damaged_spool_file_is_never_published(tmp_path):
    spool, target = tmp_path / "spool", tmp_path / "a.fits"
    spooled = await spool_one(frame(2), target, spool)
    raw = bytearray(spooled.read_bytes())
    raw[-200] ^= 0x01
    spooled.write_bytes(bytes(raw))
    (result,) = recover(spool)
    assert not result.recovered and "damaged" in result.error
    assert "checksum" in result.error.lower()
    assert not target.exists()
    assert spooled.exists() and Path(f"{spooled}.json").exists()


async def test_existing_target_identical_counts_as_recovered(tmp_path):
    spool, target = tmp_path / "spool", tmp_path / "a.fits"
    spooled = await spool_one(frame(3), target, spool)
    target.write_bytes(spooled.read_bytes())  # a recovery that could not clean up
    (result,) = recover(spool)
    assert result.recovered
    assert list(spool.iterdir()) == []


async def test_different_target_is_kept_and_the_frame_goes_next_to_it(tmp_path):
    spool, target = tmp_path / "spool", tmp_path / "a.fits.gz"
    spooled = await spool_one(frame(4), target, spool)
    original = spooled.read_bytes()
    target.write_bytes(b"someone else's file")
    taken = tmp_path / "a-recovered-1.fits.gz"
    taken.write_bytes(b"another one")
    (result,) = recover(spool)
    assert result.recovered and result.path == tmp_path / "a-recovered-2.fits.gz"
    assert "holds another frame" in result.error and str(result.path) in result.error
    assert target.read_bytes() == b"someone else's file"
    assert taken.read_bytes() == b"another one"
    assert result.path.read_bytes() == original
    assert list(spool.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_recovered_names_keep_the_compression_suffix(tmp_path):
    names = recovered_names(tmp_path / "sim1-0001.fits.fz")
    assert [p.name for p in itertools.islice(names, 3)] == [
        "sim1-0001.fits.fz",
        "sim1-0001-recovered-1.fits.fz",
        "sim1-0001-recovered-2.fits.fz",
    ]
    assert next(itertools.islice(recovered_names(tmp_path / "x"), 1, 2)).name == (
        "x-recovered-1"
    )


async def test_file_without_sidecar_is_reported_not_guessed(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "20250101T000000-x-lost.fits").write_bytes(b"SIMPLE")
    (result,) = recover(spool)
    assert not result.recovered and result.target is None
    assert "no sidecar" in result.error and "by hand" in result.error
    assert (spool / "20250101T000000-x-lost.fits").exists()


async def test_compressed_and_gzip_frames_recover_verified(tmp_path):
    spool = tmp_path / "spool"
    rice = frame(5)
    rice.append(fits.CompImageHDU(rice[0].data, compression_type="RICE_1"))
    targets = [tmp_path / "r.fits", tmp_path / "g.fits.gz"]
    await spool_one(rice, targets[0], spool, "rice")
    await spool_one(frame(6), targets[1], spool, "gz")
    assert [r.recovered for r in recover(spool)] == [True, True]
    with verified(targets[0]) as hdul:
        assert np.array_equal(hdul[1].data, rice[0].data)
    with verified(targets[1]) as hdul:
        assert np.array_equal(hdul[0].data, frame(6)[0].data)


async def test_concurrent_recoveries_publish_each_frame_once(tmp_path):
    spool = tmp_path / "spool"
    for index in range(12):
        await spool_one(frame(index), tmp_path / f"f{index}.fits", spool, f"e{index}")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: recover(spool), range(4)))
    results = [result for run in runs for result in run]
    assert sum(result.recovered for result in results) == 12
    assert all(result.error is None for result in results)
    assert sorted(r.exposure_id for r in results) == sorted(f"e{i}" for i in range(12))
    for index in range(12):
        with verified(tmp_path / f"f{index}.fits") as hdul:
            assert np.array_equal(hdul[0].data, frame(index)[0].data)
    assert list(spool.iterdir()) == []


async def test_full_spool_keeps_no_frame_without_its_sidecar(tmp_path):
    """ENOSPC between the spooled frame and its sidecar leaves nothing behind."""
    hdulist = frame(7)
    write_atomic(hdulist, tmp_path / "size.fits")
    pages = -(-(tmp_path / "size.fits").stat().st_size // 4096)
    spool = tmp_path / "spool"
    with tmpfs(spool, "1m") as mount:
        await asyncio.to_thread(mount.fill)
        await asyncio.to_thread(mount.free_pages, pages)  # room for the frame only
        with pytest.raises(OSError, match="nor spool it") as caught:
            await write_hdulist(
                hdulist, tmp_path / "t.fits", retries=0, spool_dir=spool,
                fault_hook=erofs,
            )  # fmt: skip
        assert caught.value.errno == errno.ENOSPC
        assert [p.name for p in spool.iterdir() if not p.name.startswith(".")] == []
        await asyncio.to_thread(mount.free_pages)
        await spool_one(hdulist, tmp_path / "t.fits", spool)
        assert [r.recovered for r in recover(spool)] == [True]
    with verified(tmp_path / "t.fits") as hdul:
        assert np.array_equal(hdul[0].data, hdulist[0].data)


async def test_unsaved_frames_survive_their_camera_being_removed(camera, tmp_path):
    system = camera.camera_system

    def broken(path: Path, is_spool: bool) -> None:
        raise OSError(errno.EROFS, "Read-only file system (injected)")

    camera.write_fault = broken
    exposure = Exposure(camera, data=np.full((8, 8), 7, np.uint16))
    exposure.image_type, exposure.exptime = "dark", 2.0
    with pytest.raises(ExposureWriteError, match="kept in memory"):
        await exposure.write(tmp_path / "kept.fits")
    await system.remove_camera(name="cam1")  # e.g. unplugged
    assert system.cameras == [] and system.unsaved_exposures == [exposure]
    (result,) = await system.recover(spool_dirs=[camera.spool_dir])
    assert result.source == "memory" and not result.recovered
    assert system.unsaved_exposures == [exposure]  # still failing: still held
    camera.write_fault = None
    (result,) = await system.recover(spool_dirs=[camera.spool_dir])
    assert result.recovered and result.exposure_id == exposure.exposure_id
    assert system.unsaved_exposures == []
    with verified(tmp_path / "kept.fits") as hdul:
        assert hdul[0].header["EXPTIME"] == 2.0 and int(hdul[0].data[0, 0]) == 7


def test_spool_dirs_of_a_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    default = tmp_path / "state" / "camactor" / "spool"
    assert spool_dirs(validate_config({})) == [default]
    config = validate_config(
        {
            "actor": {"spool_dir": str(tmp_path / "main")},
            "cameras": {
                "a": {"uid": "A"},
                "b": {"uid": "B", "spool_dir": str(tmp_path / "b")},
                "c": {"uid": "C", "spool_dir": str(tmp_path / "main")},
            },
        }
    )
    assert spool_dirs(config) == [tmp_path / "main", tmp_path / "b"]
    home = validate_config({"actor": {"spool_dir": "~/spool"}})
    assert home["actor"]["spool_dir"] == str(Path.home() / "spool")


def test_cameras_inherit_the_actor_spool_dir(tmp_path):
    config = validate_config(
        {
            "actor": {"spool_dir": str(tmp_path / "main")},
            "cameras": {
                "sim1": {"uid": "S1"},
                "sim2": {"uid": "S2", "spool_dir": str(tmp_path / "own")},
            },
        }
    )
    system = build_camera_system(config)
    assert system.get_camera_config(name="sim1")["spool_dir"] == str(tmp_path / "main")
    assert system.get_camera_config(name="sim2")["spool_dir"] == str(tmp_path / "own")


def camactor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "actor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


async def test_cli_recover_needs_no_broker(tmp_path):
    config = {
        "actor": {"host": "192.0.2.1", "port": 1, "spool_dir": str(tmp_path / "s0")},
        "cameras": {"sim1": {"uid": "S1", "spool_dir": str(tmp_path / "s1")}},
    }
    path = tmp_path / "camactor.yml"
    path.write_text(yaml.safe_dump(config))
    targets = [tmp_path / "data" / "a.fits", tmp_path / "data" / "b.fits"]
    originals = [
        (await spool_one(frame(8), targets[0], tmp_path / "s0", "x0")).read_bytes(),
        (await spool_one(frame(9), targets[1], tmp_path / "s1", "x1")).read_bytes(),
    ]
    done = camactor(tmp_path, "-c", str(path), "recover")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("recovered: cam1") == 2, done.stdout
    assert "Recovered 2 of 2 frames" in done.stdout
    assert [t.read_bytes() for t in targets] == originals
    for target in targets:
        verified(target).close()

    # The same CLI in-process (faster): nothing left, then a conflict.
    runner = CliRunner()
    done = runner.invoke(camactor_cli, ["-c", str(path), "recover"])
    assert done.exit_code == 0 and "Nothing to recover" in done.stdout

    # A frame whose target name was reused: both files are kept.
    await spool_one(frame(10), targets[0], tmp_path / "s1", "x2")
    done = runner.invoke(camactor_cli, ["-c", str(path), "recover"])
    assert done.exit_code == 0, done.stderr
    beside = tmp_path / "data" / "a-recovered-1.fits"
    assert f"-> {beside}" in done.stdout and "holds another frame" in done.stdout
    assert targets[0].read_bytes() == originals[0]
    with verified(beside) as hdul:
        assert hdul[0].header["OBJECT"] == "field 10"
    assert list((tmp_path / "s1").iterdir()) == []
    done = runner.invoke(camactor_cli, ["-c", str(path), "recover", "--overwrite"])
    assert done.exit_code == 2 and "No such option" in done.output


async def test_concurrent_recovers_write_a_memory_frame_once(camera, tmp_path):
    camera.write_fault = lambda path, is_spool: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system (injected)")
    )
    exposure = Exposure(camera, data=np.full((8, 8), 3, np.uint16))
    with pytest.raises(ExposureWriteError):
        await exposure.write(tmp_path / "once.fits")
    camera.write_fault = None
    system = camera.camera_system
    runs = await asyncio.gather(
        *(system.recover(spool_dirs=[camera.spool_dir]) for _ in range(3))
    )
    results = [result for run in runs for result in run]
    assert [(r.recovered, r.error) for r in results] == [(True, None)]
    assert not camera.spool_dir.exists() or list(camera.spool_dir.iterdir()) == []
    verified(tmp_path / "once.fits").close()


async def test_a_frame_named_json_is_not_taken_for_a_sidecar(tmp_path):
    spool, target = tmp_path / "spool", tmp_path / "odd.json"
    await spool_one(frame(11), target, spool)
    (result,) = recover(spool)
    assert result.recovered and result.error is None
    with verified(target) as hdul:
        assert hdul[0].header["OBJECT"] == "field 11"
