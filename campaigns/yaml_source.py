"""Reading YAML files so that every error can name the file, the line, the path and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from signage.errors import Invalid

Path_ = tuple[str | int, ...]
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str
    line: int | None = None

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        at = f" {self.path}:" if self.path else ""
        return f"{where}:{at} {self.message}. Fix: {self.fix}."


class FileRejected(Exception):
    """The file was refused as a whole; nothing of it was written."""

    def __init__(self, filename: str, problems: Sequence[Problem]) -> None:
        self.filename = filename
        self.problems = list(problems)
        super().__init__("\n".join(p.render(filename) for p in self.problems))

    def as_json(self) -> dict[str, Any]:
        return {"file": self.filename, "problems": [p.__dict__ for p in self.problems]}


def format_path(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class YamlDocument:
    """A parsed YAML file with the line of every key and item in it."""

    def __init__(self, filename: str, data: Any, lines: dict[Path_, int]) -> None:
        self.filename = filename
        self.data = data
        self._lines = lines

    @classmethod
    def load(cls, path: Path) -> YamlDocument:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileRejected(name, [Problem("", "the file does not exist", "check the path")]) from None
        except UnicodeDecodeError as exc:
            raise FileRejected(name, [Problem("", f"the file is not UTF-8 ({exc.reason})",
                                              "save it as UTF-8")]) from None
        return cls.parse(name, text)

    @classmethod
    def parse(cls, filename: str, text: str) -> YamlDocument:
        # One pass for the lines and the data, through libyaml where it is built in (a tenth of the pure-Python time).
        loader = SAFE_LOADER(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise FileRejected(filename, [Problem("", f"this is not valid YAML: {problem}",
                                                  "check indentation, colons and quotes on that line",
                                                  line)]) from None
        finally:
            loader.dispose()
        lines: dict[Path_, int] = {}
        if node is not None:
            _collect_lines(node, (), lines)
        return cls(filename, data, lines)

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest part of `path` that the file has."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def problem(self, path: Path_, message: str, fix: str) -> Problem:
        return Problem(format_path(path), message, fix, self.line_of(path))

    def validate(self, model: type[M]) -> M:
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise FileRejected(self.filename, [self._problem_from(e) for e in exc.errors()]) from None

    def _problem_from(self, error: Any) -> Problem:
        # pydantic appends the name of a failing validator or union member to the location; keep real keys
        path = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "["))))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, Invalid):
            return self.problem(path, cause.problem, cause.fix)
        message, fix = _explain(error)
        return self.problem(path, message, fix)


def _collect_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            _collect_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*path, index), lines)


def _explain(error: dict[str, Any]) -> tuple[str, str]:
    kind, message = error["type"], error["msg"]
    given = error.get("input")
    if kind == "missing":
        return "a required field is missing", f"add {error['loc'][-1]!s}"
    if kind == "extra_forbidden":
        return f"unknown field {error['loc'][-1]!s}", "remove it or check its spelling against the docs"
    if kind in ("enum", "literal_error"):
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"{given!r} is not allowed here", f"use one of {expected}"
    if kind == "string_pattern_mismatch":
        return (f"{given!r} is not a valid id",
                "use 2 to 63 characters: lowercase letters a-z, digits and '-', starting with a letter or digit")
    if kind.startswith("date"):
        return f"{given!r} is not a date", "write dates as YYYY-MM-DD, e.g. 2024-08-15"
    if kind == "value_error":
        return message.removeprefix("Value error, "), "correct the value as the message says"
    return f"{message} (got {given!r})", "correct the value"
