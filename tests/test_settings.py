from pathlib import Path

import pytest
from pydantic import ValidationError

from signage.config import Settings


def test_settings_come_from_signage_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGNAGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIGNAGE_BROKER_PORT", "18830")
    settings = Settings(_env_file=None)
    assert settings.data_dir == tmp_path
    assert settings.broker_port == 18830


def test_settings_are_read_from_a_dotenv_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SIGNAGE_TIMEZONE=Asia/Bangkok\nSIGNAGE_HTTP_PORT=9000\n")
    settings = Settings(_env_file=env_file)
    assert (settings.timezone, settings.http_port) == ("Asia/Bangkok", 9000)


def test_the_default_database_is_sqlite_under_the_data_directory():
    settings = Settings(_env_file=None, data_dir=Path("var"))
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.resolved_database_url == f"sqlite:///{Path('var').resolve() / 'signage.db'}"


def test_an_unknown_timezone_is_refused_with_an_example_of_a_good_one():
    with pytest.raises(ValidationError, match="Asia/Ho_Chi_Minh"):
        Settings(_env_file=None, timezone="Asia/Hanoi_City")
