"""No path of the writer or of ``recover`` loses or replaces a frame.

Name reuse after a restart, exceptions that are not `OSError`, a spool locked
by another process and the journal after a recovery, through the real actor.
"""

from __future__ import annotations

import errno
from pathlib import Path

from actor_fixtures import actor_config, keywords, send, start_actor
from actor_test_helpers import camera, fails, ok
from astropy.io import fits
from disk_helpers import verified


def refuse_target(path: Path, is_spool: bool) -> None:
    if not is_spool:
        raise OSError(errno.EROFS, "Read-only file system (injected)", str(path))


async def test_recover_never_replaces_a_reused_name(client, actor, tmp_path):
    first = await ok(client, actor, "expose sim1 0.05 --dark -f a.fits")
    (written,) = keywords(first, "filename")
    before = Path(written["path"]).read_bytes()
    # The same name again: the second frame goes to the spool, not over a.fits.
    second = await send(client, actor, "expose sim1 0.05 --flat -f a.fits")
    assert "already exists" in second.replies[-1].message["error"]
    assert "recover" in second.replies[-1].message["error"]
    assert len(list((tmp_path / "spool").glob("*-a.fits"))) == 1

    command = await ok(client, actor, "recover")
    (result,) = keywords(command, "recovered")
    beside = Path(written["path"]).with_name("a-recovered-1.fits")
    assert result["recovered"] and result["written_to"] == str(beside)
    assert str(beside) in result["error"]
    assert Path(written["path"]).read_bytes() == before  # the first frame is kept
    with verified(beside) as hdul:
        assert hdul[0].header["IMAGETYP"] == "flat"
    assert list((tmp_path / "spool").iterdir()) == []
    await fails(client, actor, "recover --overwrite", match="overwrite")


async def test_namer_skips_the_name_of_a_spooled_frame(client, tmp_path):
    config = actor_config(tmp_path)
    config["cameras"]["sim1"].update(write_retries=0)
    actor = await start_actor(config)
    try:
        camera(actor, "sim1").write_fault = refuse_target
        await send(client, actor, "expose sim1 0.05 --dark")
        assert len(list((tmp_path / "spool").glob("*-sim1-0001.fits"))) == 1
    finally:
        await actor.stop()
    actor = await start_actor(config)  # a restart forgets the sequence number
    try:
        command = await ok(client, actor, "expose sim1 0.05 --flat")
        (written,) = keywords(command, "filename")
        target = tmp_path / "data" / "sim1" / "sim1-0001.fits"
        assert written["path"] == str(target.with_name("sim1-0002.fits"))
        command = await ok(client, actor, "recover")
        (result,) = keywords(command, "recovered")
        assert result["written_to"] == str(target) and result["error"] is None
        assert fits.getval(target, "IMAGETYP") == "dark"
        assert fits.getval(written["path"], "IMAGETYP") == "flat"
    finally:
        await actor.stop()
