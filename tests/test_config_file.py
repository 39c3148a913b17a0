"""The config file, run as a user would: `~/.config/ttdr/config.toml` and `./ttdr.toml`, below
the TTDR_* variables and the flags; `ttdr config show` says where each value came from,
`ttdr config init` writes a commented file, and a broken file is one line naming it, exit 2.

Every test runs the real command with its own HOME and working directory, and with no TTDR_*
or XDG_* variable from the machine running the tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import CORPUS


class User:
    """A user's home folder and working directory, and the command run there."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.cwd = root / "work"
        self.home.mkdir(parents=True)
        self.cwd.mkdir()
        self.user_file = self.home / ".config" / "ttdr" / "config.toml"
        self.project_file = self.cwd / "ttdr.toml"

    def write_user_file(self, text: str) -> None:
        self.user_file.parent.mkdir(parents=True, exist_ok=True)
        self.user_file.write_text(text)

    def ttdr(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith(("TTDR_", "XDG_CONFIG_HOME", "XDG_DATA_HOME"))
        }
        return subprocess.run(
            [sys.executable, "-m", "ttdr.cli", *args],
            cwd=self.cwd,
            env={**clean, "HOME": str(self.home), "COLUMNS": "200", **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def settings(self, **env: str) -> dict[str, dict]:
        result = self.ttdr("config", "show", "--json", **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def user(tmp_path: Path) -> User:
    return User(tmp_path)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


# -- precedence --------------------------------------------------------------------------------


def test_precedence_is_defaults_user_file_project_file_environment(user: User) -> None:
    user.write_user_file('iterations = 4\ngrounding = "marked"\nsearch = "web"\n')
    user.project_file.write_text('iterations = 2\nsearch = "local"\n')

    shown = user.settings(TTDR_SEARCH="auto")

    assert shown["grounding"] == {"value": "marked", "source": str(user.user_file)}
    assert shown["iterations"] == {"value": 2, "source": str(user.project_file)}
    assert shown["search"] == {"value": "auto", "source": "TTDR_SEARCH"}
    assert shown["length"] == {"value": "medium", "source": "default"}


def test_a_run_takes_file_then_environment_then_flags(user: User, tiny_model: Path) -> None:
    """One real run: each setting comes from the highest level that sets it."""
    user.write_user_file(
        f'model = "{tiny_model}"\nsection_tokens = 12\ngrounding = "marked"\n'
        'length = "short"\nsearch = "web"\niterations = 3\n'
    )
    user.project_file.write_text("iterations = 0\nvariants = 1\nevolution_rounds = 0\n")
    home = user.cwd / "data"
    result = user.ttdr(
        "research", "Why does the ocean have tides?", "--docs", str(CORPUS), "--search",
        "local", TTDR_HOME=str(home), TTDR_LENGTH="long", TTDR_SEARCH="auto", TTDR_ITERATIONS="1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(user.ttdr("history", "list", "--json", TTDR_HOME=str(home)).stdout)
    detail = json.loads(
        user.ttdr("history", "show", run["id"], "--json", TTDR_HOME=str(home)).stdout
    )
    config = detail["config"]
    assert config["model"] == str(tiny_model)  # user file over the default
    assert config["grounding"] == "marked"  # user file over the default
    assert config["variants"] == 1  # project file over the default
    assert config["length"] == "long"  # environment over the user file
    assert config["iterations"] == 1  # environment over both files
    assert config["search"] == "local"  # the flag over the environment and the file


def test_the_data_folder_follows_xdg_data_home_and_a_file_s_tilde(user: User) -> None:
    assert user.settings()["home"]["value"] == str(user.home / ".local" / "share" / "ttdr")
    data = user.cwd / "xdg-data"
    assert user.settings(XDG_DATA_HOME=str(data))["home"]["value"] == str(data / "ttdr")
    assert user.settings(XDG_DATA_HOME="relative/ignored")["home"]["value"] == str(
        user.home / ".local" / "share" / "ttdr"
    )
    user.project_file.write_text('home = "~/research"\n')
    shown = user.settings(XDG_DATA_HOME=str(data))["home"]
    assert shown == {"value": str(user.home / "research"), "source": str(user.project_file)}


def test_the_user_file_follows_xdg_config_home(user: User) -> None:
    config_home = user.cwd / "xdg-config"
    (config_home / "ttdr").mkdir(parents=True)
    (config_home / "ttdr" / "config.toml").write_text("variants = 5\n")
    user.write_user_file("variants = 3\n")  # ~/.config is not read when XDG_CONFIG_HOME is set
    shown = user.settings(XDG_CONFIG_HOME=str(config_home))["variants"]
    assert shown == {"value": 5, "source": str(config_home / "ttdr" / "config.toml")}


def test_config_show_prints_a_table_of_values_and_sources(user: User) -> None:
    user.project_file.write_text("iterations = 2\n")
    result = user.ttdr("config", "show", TTDR_EMBEDDINGS="true")
    assert result.returncode == 0
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in result.stdout.splitlines()}
    assert rows["setting"] == ["value", "source"]
    assert rows["iterations"] == ["2", str(user.project_file)]
    assert rows["embeddings"] == ["true", "TTDR_EMBEDDINGS"]
    assert rows["judge_model"] == ["(unset)", "default"]
    assert f"Config files read (later wins): {user.project_file}" in result.stderr
    fresh = User(user.cwd / "fresh")
    assert "No config file" in fresh.ttdr("config", "show").stderr


# -- config init -------------------------------------------------------------------------------


def test_config_init_writes_a_commented_file_that_changes_nothing(user: User) -> None:
    defaults = user.settings()
    result = user.ttdr("config", "init")
    assert result.returncode == 0, result.stderr
    assert f"Wrote {user.user_file}" in result.stderr
    text = user.user_file.read_text()
    assert tomllib.loads(text) == {}  # every line is a comment
    assert "# iterations = 3" in text and "(TTDR_ITERATIONS)" in text
    assert "One of: web, local, auto, searxng." in text
    assert user.settings() == defaults


def test_every_line_of_the_init_file_uncommented_is_valid_and_means_the_defaults(
    user: User,
) -> None:
    defaults = user.settings()
    assert user.ttdr("config", "init", "--path", "ttdr.toml").returncode == 0
    setting = re.compile(r"^# (\w+ = .*)$")
    lines = user.project_file.read_text().splitlines()
    uncommented = [
        m[1] for m in map(setting.match, lines) if m and "(unset by default)" not in m[1]
    ]
    assert len(uncommented) >= 15
    user.project_file.write_text("\n".join(uncommented) + "\n")
    shown = user.settings()
    assert {k: v["value"] for k, v in shown.items()} == {k: v["value"] for k, v in defaults.items()}
    assert shown["iterations"]["source"] == str(user.project_file)


def test_config_init_refuses_to_overwrite_without_force(user: User) -> None:
    user.project_file.write_text("iterations = 2\n")
    line = one_error_line(user.ttdr("config", "init", "--path", str(user.project_file)))
    assert str(user.project_file) in line and "--force" in line
    assert user.project_file.read_text() == "iterations = 2\n"
    forced = user.ttdr("config", "init", "--path", str(user.project_file), "--force")
    assert forced.returncode == 0 and "# iterations = 3" in user.project_file.read_text()


def test_config_init_into_a_folder_or_an_unwritable_place_is_one_line(user: User) -> None:
    assert "is a folder" in one_error_line(user.ttdr("config", "init", "--path", str(user.cwd)))
    blocked = user.cwd / "a-file"
    blocked.write_text("")
    line = one_error_line(user.ttdr("config", "init", "--path", str(blocked / "ttdr.toml")))
    assert "cannot create the folder" in line


# -- broken files ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["config", "show"], ["history", "list"], ["research", "q"]])
def test_a_file_that_is_not_toml_is_one_line_naming_it(user: User, command: list[str]) -> None:
    user.project_file.write_text('iterations = 2\nsearch = "local\n')
    line = one_error_line(user.ttdr(*command))
    assert f"{user.project_file}: not valid TOML" in line and "line 2" in line


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            'search = "gopher"\n',
            "search = 'gopher': Input should be 'web', 'local', 'auto' or 'searxng'",
        ),
        ('iterations = "many"\n', "iterations = 'many'"),
        ("iterations = 99\n", "iterations = 99: Input should be less than or equal to 50"),
        ("dtype = 16\n", "dtype = 16"),
    ],
)
def test_a_bad_value_in_a_file_is_one_line_naming_the_file_and_key(
    user: User, text: str, says: str
) -> None:
    user.write_user_file(text)
    line = one_error_line(user.ttdr("research", "q", "--docs", str(CORPUS)))
    assert line.startswith(f"Error: {user.user_file}: ") and says in line
    assert "TTDR_" not in line.split("(")[0]  # the file is named, not a variable
    assert not (user.home / ".local" / "share" / "ttdr" / "ttdr.db").exists()  # no run made


def test_an_unknown_key_is_refused_with_the_closest_name(user: User) -> None:
    user.project_file.write_text('searhc = "web"\n')
    line = one_error_line(user.ttdr("history", "list"))
    assert f"{user.project_file}: unknown setting 'searhc' (did you mean 'search'?)" in line


def test_the_environment_overrides_a_bad_file_value(user: User) -> None:
    user.project_file.write_text('search = "gopher"\n')
    assert user.settings(TTDR_SEARCH="local")["search"] == {
        "value": "local",
        "source": "TTDR_SEARCH",
    }
