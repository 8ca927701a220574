"""Config and mapping files: env expansion, relative paths, and errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from connector.config import YamlError, load_config
from connector.mappings import MappingWatcher, load_mappings

from tests.conftest import write_setup

REPO = Path(__file__).resolve().parent.parent


def test_example_config_loads_with_its_mappings() -> None:
    config = load_config(REPO / "config.example.yaml")
    mappings = load_mappings(config)
    assert config.plain.signing_secret.get_secret_value() == "local-dev-secret-change-me"
    assert config.targets["audit"].config.path == str(REPO / "data" / "sync-log.jsonl")  # type: ignore[attr-defined]
    assert [d.target for d in mappings.destinations("cg_x", "enterprise")] == ["audit"]


def test_env_variables_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    (tmp_path / "m.yaml").write_text("mappings: []\n")
    path.write_text(
        "plain: {signing_secret: '${SECRET_FOR_TEST}', replay_tolerance_seconds: '${TOL:-120}'}\n"
        "mappings: m.yaml\nserver: {port: 9999}\n"
    )
    monkeypatch.setenv("SECRET_FOR_TEST", "s3cr3t-value")
    monkeypatch.delenv("TOL", raising=False)
    config = load_config(path)
    assert config.plain.signing_secret.get_secret_value() == "s3cr3t-value"
    assert config.plain.replay_tolerance_seconds == 120
    assert "s3cr3t-value" not in repr(config.plain)
    assert "s3cr3t-value" in config.secrets()


def test_missing_env_variable_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("server: {port: 1}\nplain:\n  signing_secret: ${NOT_SET_ANYWHERE}\n")
    with pytest.raises(YamlError) as err:
        load_config(path)
    assert str(err.value) == f"{path}:3: environment variable NOT_SET_ANYWHERE is not set"


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("plain: {signing_secret: x}\nserver: {port: 99999}\n", 2, "server.port"),
        ("plain: {signing_secret: x}\nsurprise: 1\n", 2, "surprise"),
        ("plain: {signing_secret: x}\ntargets:\n  crm: {type: nosuchcrm}\n", 3, "unknown target type 'nosuchcrm'"),
        ("plain: {signing_secret: x}\ntargets:\n  a:\n    type: jsonl\n    pathh: x\n", 5, "pathh"),
        ("plain: {signing_secret: x\n", 2, "invalid YAML"),
    ],
)
def test_config_errors_have_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(YamlError) as err:
        load_config(path)
    assert err.value.line == line
    assert words in str(err.value) and str(err.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("mappings:\n  - group: enterprise\n    to:\n      - {target: hubspott}\n", 4, "unknown target 'hubspott'"),
        ("mappings:\n  - group: enterprise\n    to: []\n", 3, "non-empty list"),
        ("mappings:\n  - grop: enterprise\n    to: [{target: audit}]\n", 2, "unknown key 'grop'"),
        ("mappings:\n  - group: e\n    to:\n      - {target: audit, nested: {a: 1}}\n", 4, "plain value"),
        ("nothing: here\n", 1, "'mappings:'"),
        ("mappings:\n  - group: [\n", 3, "invalid YAML"),
    ],
)
def test_mapping_errors_have_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    config = load_config(write_setup(tmp_path))
    (tmp_path / "mappings" / "groups.yaml").write_text(text)
    with pytest.raises(YamlError) as err:
        load_mappings(config)
    assert (err.value.line, err.value.path) == (line, str(tmp_path / "mappings" / "groups.yaml"))
    assert words in err.value.message


def test_group_by_key_or_id_and_many_targets(tmp_path: Path) -> None:
    targets = {"a": {"type": "jsonl", "path": "a.jsonl"}, "b": {"type": "jsonl", "path": "b.jsonl"}}
    config = load_config(write_setup(tmp_path, targets=targets, mappings=[
        {"group": "enterprise", "to": [{"target": "a"}, {"target": "b", "tag": "x"}]},
        {"group": "cg_ent", "to": [{"target": "a"}, {"target": "b", "tag": "y"}]},
    ]))  # fmt: skip
    (tmp_path / "mappings" / "more.yaml").write_text("mappings:\n  - group: enterprise\n    to: [{target: a, n: 1}]\n")
    mappings = load_mappings(config)
    got = [(d.target, dict(d.options)) for d in mappings.destinations("cg_ent", "enterprise")]
    assert got == [("a", {}), ("b", {"tag": "y"}), ("b", {"tag": "x"}), ("a", {"n": 1})]
    assert mappings.destinations("cg_other", "other") == ()
    assert mappings.destinations("cg_ent", None)[0].source.endswith("groups.yaml:9")


def test_watcher_swaps_only_valid_sets(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    watcher = MappingWatcher(config, load_mappings(config))
    file = tmp_path / "mappings" / "groups.yaml"
    file.write_text("mappings:\n  - group: beta\n    to: [{target: missing}]\n")
    assert watcher.poll() is False
    assert watcher.current.groups() == ["enterprise"] and "groups.yaml:3" in (watcher.last_error or "")
    file.write_text("mappings:\n  - group: beta\n    to: [{target: audit}]\n")
    assert watcher.poll() is True
    assert watcher.current.groups() == ["beta"] and watcher.last_error is None
    assert watcher.poll() is False  # unchanged files: nothing to do


def test_binary_garbage_in_a_mapping_file_is_a_located_error(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    (tmp_path / "mappings" / "groups.yaml").write_bytes(b"mappings:\n  - group: x\n\x00\xff\xfe\n")
    with pytest.raises(YamlError) as err:
        load_mappings(config)
    assert err.value.line == 3 and "not UTF-8" in err.value.message
