from pathlib import Path

import pytest

from spikegate.service.cli import main
from spikegate.service.config import ConfigError, HttpSinkConfig, load_settings


def test_default_is_the_demo_on_localhost() -> None:
    s = load_settings(environ={})
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    (p,) = s.pipelines
    assert p.source.kind == "demo" and p.model.kind == "tracker"
    assert [k.kind for k in p.sinks] == ["websocket"]


def test_toml_then_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(
        '[server]\nport = 9000\n\n[[pipelines]]\nname = "a"\n'
        '[pipelines.source]\nkind = "demo"\nrate_ev_s = 1000\n'
        '[[pipelines.sinks]]\nkind = "http"\nurl = "http://127.0.0.1:1/cmd"\n'
    )
    env = {"SPIKEGATE_SERVER__PORT": "9100", "SPIKEGATE_PIPELINES__0__SOURCE__RATE_EV_S": "2e3",
           "SPIKEGATE_API_TOKEN": "123", "OTHER": "x"}
    s = load_settings(cfg, environ=env)
    assert s.server.port == 9100
    assert s.server.api_token is not None and s.server.api_token.get_secret_value() == "123"
    assert s.pipelines[0].source.rate_ev_s == 2000.0
    assert isinstance(s.pipelines[0].sinks[0], HttpSinkConfig)


def test_env_alone_can_configure_the_default_pipeline() -> None:
    s = load_settings(environ={"SPIKEGATE_PIPELINES__0__SOURCE__WIDTH": "128"})
    assert s.pipelines[0].source.width == 128 and s.pipelines[0].name == "demo"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[server]\nport = 70000\n", {}, "server.port: Input should be less than or equal"),
        ("[server]\nprot = 1\n", {}, "server.prot: Extra inputs are not permitted"),
        ("[[pipelines]]\n[pipelines.source]\nkind = \"demo\"\nrate_ev_s = -5\n", {},
         "pipelines.0.source.demo.rate_ev_s: Input should be greater than 0"),
        ("[[pipelines]]\n[pipelines.source]\nkind = \"camera9\"\n", {},
         "pipelines.0.source: Input tag 'camera9'"),
        ("server = [", {}, "not valid TOML"),
        ("", {"SPIKEGATE_SERVER__PORT": "eighty"}, "server.port: Input should be a valid integer"),
        ("[[pipelines]]\n[[pipelines]]\n", {}, "pipeline names must be unique"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ=env)
    text = str(info.value)
    assert message in text and "\n" not in text and text.startswith(str(cfg))


def test_inline_events_reaches_the_pipeline(tmp_path: Path) -> None:
    from spikegate.service.gateway import build_pipeline
    from spikegate.service.pipeline import INLINE_EVENTS

    default, = load_settings(environ={}).pipelines
    assert default.inline_events == INLINE_EVENTS
    cfg = tmp_path / "g.toml"
    cfg.write_text("[[pipelines]]\ninline_events = 0\n")
    off, = load_settings(cfg, environ={}).pipelines
    assert build_pipeline(off).inline_events == 0
    cfg.write_text("[[pipelines]]\ninline_events = -1\n")
    with pytest.raises(ConfigError, match=r"pipelines\.0\.inline_events"):
        load_settings(cfg, environ={})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings("/nonexistent/spikegate.toml", environ={})


def test_serve_with_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nport = -1\n")
    assert main(["serve", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikegate serve: ") and "server.port" in err and "\n" not in err
