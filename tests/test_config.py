"""The launcher's configuration: defaults, clear errors, overrides, redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from actor.__main__ import camactor
from actor.cli_secrets import RedactingFilter
from actor.config import (
    CONFIG_SCHEMA,
    ENV_VARS,
    ConfigError,
    apply_env,
    apply_overrides,
    load_config,
    redact_text,
    redacted,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]


def actor_of(config: dict) -> dict:
    return validate_config(config)["actor"]


def error_of(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_schema_is_valid_and_immutable():
    from actor.config_schema import thaw as _thaw

    jsonschema.Draft202012Validator.check_schema(_thaw(CONFIG_SCHEMA))
    with pytest.raises(TypeError):
        CONFIG_SCHEMA["properties"]["actor"]["properties"]["port"]["default"] = 1


def test_defaults_filled(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = validate_config({})
    assert config["cameras"] == {} and config["simulator"] == {}
    actor = config["actor"]
    assert actor["name"] == "camactor"
    assert actor["url"] is None
    assert (actor["host"], actor["port"]) == ("127.0.0.1", 5672)
    assert (actor["user"], actor["password"], actor["virtualhost"]) == (
        "guest",
        "guest",
        "/",
    )
    assert actor["data_dir"] == str(tmp_path / "camactor-data")
    assert actor["image_name"] == "{camera.name}-{num:04d}.fits"
    assert actor["image_dir"] == "{camera.name}/{int(date.mjd)}"
    assert actor["default_cameras"] == []
    assert actor["log_dir"] == str(tmp_path / ".camactor" / "logs")
    assert actor["pid_file"] == str(tmp_path / ".camactor" / "camactor.pid")
    assert actor["validate"] is True
    assert actor["max_command_bytes"] == 65536
    assert actor["poll_interval"] == 1.0
    assert actor["legacy"] is None


def test_validate_returns_a_copy_and_is_idempotent():
    original = {"actor": {"name": "cam"}, "cameras": None}
    config = validate_config(original)
    assert original == {"actor": {"name": "cam"}, "cameras": None}
    assert validate_config(config) == config


def test_packaged_config_loads():
    config = load_config(None)
    assert config["actor"]["name"] == "camactor"
    assert set(config["cameras"]) == {"sim1", "sim2"}
    assert load_config(ROOT / "etc" / "camactor.yml") == config


@pytest.mark.parametrize(
    ("config", "key", "suggestion"),
    [
        ({"actor": {"prot": 5672}}, "actor.prot", "actor.port"),
        ({"actor": {"data-dir": "x"}}, "actor.data-dir", "actor.data_dir"),
        ({"actr": {}}, "actr", "actor"),
        ({"camera": {}}, "camera", "cameras"),
        ({"actor": {"legacy": {"hots": "h", "port": 1}}}, "actor.legacy.hots", "host"),
    ],
)
def test_unknown_key_is_named_with_suggestion(config, key, suggestion):
    message = error_of(config)
    assert f"unknown key {key} " in message
    assert f"did you mean {suggestion}" in message or suggestion in message


def test_unknown_key_without_close_match_lists_valid_keys():
    message = error_of({"actor": {"zzzzzz": 1}})
    assert "actor.zzzzzz" in message and "valid keys" in message and "port" in message


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ({"port": "abc"}, "actor.port must be an integer, not 'abc'"),
        ({"port": 70000}, "actor.port must be in 1..65535, not 70000"),
        ({"port": 0}, "actor.port must be in 1..65535"),
        ({"port": True}, "actor.port must be an integer"),
        ({"default_cameras": "sim1"}, "actor.default_cameras must be a list"),
        ({"default_cameras": [1]}, "actor.default_cameras[0] must be a string"),
        ({"name": "1cam"}, "actor.name: '1cam' must start with a letter"),
        ({"name": "my cam"}, "actor.name"),
        ({"url": "http://host"}, "actor.url: 'http://host' is not an amqp://"),
        ({"url": "amqp://h:99999/"}, "actor.url"),
        ({"validate": "yes"}, "actor.validate must be true or false"),
        ({"poll_interval": 0}, "actor.poll_interval must be > 0"),
        ({"max_command_bytes": 1.5}, "actor.max_command_bytes must be an integer"),
        ({"legacy": {"host": "h"}}, "actor.legacy.port is required"),
        ({"legacy": []}, "actor.legacy must be a mapping or null"),
        ({"image_name": "{camera.name}.fits"}, "actor.image_name"),
        ({"image_dir": "{oops"}, "actor.image_dir is not a valid template"),
        ({"host": ""}, "actor.host must not be empty"),
    ],
)
def test_wrong_values_name_the_key(actor, expected):
    assert expected in error_of({"actor": actor})


def test_sections_must_be_mappings():
    assert "actor must be a mapping" in error_of({"actor": [1]})
    assert "cameras must be a mapping" in error_of({"cameras": ["sim1"]})
    assert "simulator must be a mapping" in error_of({"simulator": 3})
    assert "cameras.sim1 must be a mapping" in error_of({"cameras": {"sim1": [1]}})
    with pytest.raises(ConfigError):
        validate_config(["not", "a", "mapping"])


def test_camera_entries_are_left_to_camera_core():
    config = validate_config({"cameras": {"c1": {"anything": [1, 2]}}})
    assert config["cameras"] == {"c1": {"anything": [1, 2]}}


def test_several_problems_are_all_reported():
    message = error_of({"actor": {"prot": 1, "port": "x"}, "extra": 1})
    assert "3 problems" in message
    assert "unknown key extra" in message
    assert "actor.prot" in message and "actor.port must be an integer" in message


def test_default_cameras_must_be_configured():
    cameras = {"sim1": {"uid": "SIM-0001"}, "sim2": {"uid": "SIM-0002"}}
    ok = {"actor": {"default_cameras": ["sim1", "SIM-0002"]}, "cameras": cameras}
    assert actor_of(ok)["default_cameras"] == ["sim1", "SIM-0002"]
    bad = {"actor": {"default_cameras": ["sim3"]}, "cameras": cameras}
    message = error_of(bad)
    assert "actor.default_cameras[0]" in message and "did you mean 'sim" in message


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read"):
        load_config(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("actor: [\n")
    with pytest.raises(ConfigError, match="Invalid YAML"):
        load_config(broken)
    typo = tmp_path / "typo.yml"
    typo.write_text("actor:\n  prot: 5672\n")
    with pytest.raises(ConfigError, match=r"actor\.prot .*actor\.port"):
        load_config(typo)


def test_env_overrides():
    environ = {
        "CAMACTOR_BROKER_HOST": "broker.example",
        "CAMACTOR_BROKER_PORT": "5673",
        "CAMACTOR_BROKER_USER": "obs",
        "CAMACTOR_BROKER_PASSWORD": "s3cret",
        "UNRELATED": "x",
    }
    actor = actor_of(apply_env({"actor": {"host": "file", "port": 1}}, environ))
    assert (actor["host"], actor["port"]) == ("broker.example", 5673)
    assert (actor["user"], actor["password"]) == ("obs", "s3cret")
    url = actor_of(apply_env({}, {"CAMACTOR_BROKER_URL": "amqp://a:b@h:1/v"}))["url"]
    assert url == "amqp://a:b@h:1/v"
    assert actor_of(apply_env({}, {"CAMACTOR_BROKER_HOST": ""}))["host"] == "127.0.0.1"
    with pytest.raises(ConfigError, match=r"CAMACTOR_BROKER_PORT.*actor\.port"):
        apply_env({}, {"CAMACTOR_BROKER_PORT": "abc"})


def test_env_sets_actor_name_and_data_dir_below_the_flags(tmp_path):
    environ = {"CAMACTOR_NAME": "cam_env", "CAMACTOR_DATA_DIR": "~/env-data"}
    config = validate_config(
        apply_env({"actor": {"name": "cam_file", "data_dir": "/file"}}, environ)
    )
    assert config["actor"]["name"] == "cam_env"
    assert config["actor"]["data_dir"] == str(Path("~/env-data").expanduser())
    flagged = apply_overrides(apply_env({}, environ), {"data_dir": str(tmp_path)})
    assert validate_config(flagged)["actor"]["data_dir"] == str(tmp_path)
    with pytest.raises(ConfigError, match=r"actor\.name"):
        validate_config(apply_env({}, {"CAMACTOR_NAME": "bad name"}))


def test_env_and_flags_also_update_a_url_from_below():
    config = {"actor": {"url": "amqp://bob:pw@h:5672/v"}}
    config = apply_env(config, {"CAMACTOR_BROKER_PORT": "5673"})
    config = apply_overrides(config, {"user": "ann", "host": None})
    assert actor_of(config)["url"] == "amqp://ann:pw@h:5673/v"
    # A URL from a higher layer wins over everything below it.
    config = apply_overrides(config, {"url": "amqps://x/"})
    assert actor_of(config)["url"] == "amqps://x/"


def test_cli_flag_precedence(tmp_path, monkeypatch):
    """flags > env > file > defaults, checked through the launcher itself."""
    import actor.__main__ as main

    for variable in ENV_VARS:
        monkeypatch.delenv(variable, raising=False)
    seen = {}

    @main.camactor.command("show-config")
    def show_config() -> None:
        import click

        seen.update(click.get_current_context().obj.config["actor"])

    try:
        path = tmp_path / "cfg.yml"
        path.write_text("actor:\n  host: file-host\n  port: 1111\n  user: file-user\n")
        env = {"CAMACTOR_BROKER_PORT": "2222", "CAMACTOR_BROKER_USER": "env-user"}
        runner = CliRunner()
        args = ["-c", str(path), "--user", "flag-user", "--name", "cam2", "show-config"]
        result = runner.invoke(camactor, args, env=env)
        assert result.exit_code == 0, result.output
        assert seen["host"] == "file-host"  # file over default
        assert seen["port"] == 2222  # env over file
        assert seen["user"] == "flag-user"  # flag over env
        assert seen["name"] == "cam2"
        assert seen["password"] == "guest"  # default
        result = runner.invoke(camactor, ["-c", str(path), "show-config"], env=env)
        assert result.exit_code == 0, result.output
        assert seen["user"] == "env-user"
        result = runner.invoke(
            camactor, ["-c", str(path), "--port", "3333", "show-config"]
        )
        assert seen["port"] == 3333
    finally:
        main.camactor.commands.pop("show-config")


def test_redaction_hides_passwords():
    config = validate_config(
        apply_env(
            {"actor": {"url": "amqp://obs:hunter2@broker:5672/%2F"}},
            {"CAMACTOR_BROKER_PASSWORD": "s3cret"},
        )
    )
    safe = redacted(config)
    text = repr(safe)
    assert "hunter2" not in text and "s3cret" not in text
    assert safe["actor"]["password"] == "***"
    assert safe["actor"]["url"] == "amqp://obs:***@broker:5672/%2F"
    assert config["actor"]["password"] == "s3cret"  # the original is untouched
    nested = redacted({"cameras": {"c": {"connection_params": {"api_token": "t0k"}}}})
    assert "t0k" not in repr(nested)
    assert redact_text("to amqps://u:p%40ss@h/v and amqp://u@h") == (
        "to amqps://u:***@h/v and amqp://u@h"
    )


def test_errors_never_show_secrets():
    message = error_of({"actor": {"password": 123456}})
    assert "actor.password" in message and "123456" not in message
    message = error_of({"actor": {"url": "amqp://u:hunter2@h:99999/"}})
    assert "actor.url" in message and "hunter2" not in message


def test_logging_filter_redacts_urls(caplog):
    logger = logging.getLogger("camactor.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="camactor.test"):
        logger.info("bound to %s", "amqp://guest:guest@127.0.0.1:5672//")
    assert "guest:guest" not in caplog.text
    assert "amqp://guest:***@127.0.0.1:5672//" in caplog.text
