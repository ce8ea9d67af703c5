"""The player's config file: written by `signage player register` on the server, read by the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from signage.private_files import write_private

PLAYER_CONFIG_SCHEMA = "signage.player-config/1"


class PlayerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["signage.player-config/1"] = Field(PLAYER_CONFIG_SCHEMA, alias="schema")
    player_id: Annotated[str, Field(min_length=2, max_length=63)]
    broker_host: str = "127.0.0.1"
    broker_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    broker_tls_ca: str | None = None  # CA file: set when the broker listens with TLS
    username: str
    password: str
    server_url: str  # where media is downloaded from, e.g. http://127.0.0.1:8000
    public_keys: Annotated[list[str], Field(min_length=1)]  # the server's Ed25519 keys, base64; more while rotating
    data_dir: str = "var/player"
    headless: bool = False  # dummy video and audio outputs (tests, machines without a screen)

    @classmethod
    def load(cls, path: Path) -> PlayerConfig:
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path} does not exist; make it on the server with `signage player register`") from None
        except ValidationError as exc:
            raise ValueError(f"{path} is not a player config: {exc}") from None

    def write(self, path: Path) -> None:
        """Writes the file mode 0600 (it holds the secret), replacing any file there, whatever its mode was."""
        write_private(path, self.model_dump_json(by_alias=True, indent=2) + "\n")
