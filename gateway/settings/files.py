"""Reading configuration files: YAML parsing, `${VAR}` interpolation, includes, and a collector
that validates what they hold, reporting each problem at its file and key path.

Nothing here knows the schema; the models (gateway/settings/models.py, providers.py) decide what
is valid, and gateway/settings/loader.py assembles one `Settings` from the files.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.settings.problems import ConfigProblem, KeyPart, key_path, validation_errors

ModelT = TypeVar("ModelT", bound=BaseModel)


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that remembers duplicate mapping keys, which PyYAML silently lets the last one win."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            # Merge keys (`<<`) may legitimately be overridden, and only scalars can be compared here.
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                self.duplicates.append((key_node.value, key_node.start_mark.line + 1))
            seen.add(ident)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str) -> tuple[Any, list[ConfigProblem]]:
    """Parse one YAML file; returns `(None, problems)` when it cannot be read, `{}` for an empty file."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, [ConfigProblem(path, "", "file not found")]
    except OSError as exc:
        return None, [ConfigProblem(path, "", f"cannot read file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [ConfigProblem(path, "", f"not valid UTF-8 (at byte {exc.start})")]

    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [ConfigProblem(path, "", f"invalid YAML{where}: {what}")]
    except yaml.YAMLError as exc:
        return None, [ConfigProblem(path, "", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    problems = [ConfigProblem(path, "", f"duplicate key {key!r} at line {line}") for key, line in loader.duplicates]
    return ({} if data is None else data), problems


# `$${` first so that the escape wins over a reference starting at the same `$`.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _substitute(text: str, environ: Mapping[str, str], report: Callable[[str], None]) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        name = match.group(1)
        if token == "$${":
            return "${"
        if name is None:
            report("unterminated '${' (write '$${' for a literal '${')")
        elif not _VAR_NAME.fullmatch(name):
            report(f"invalid variable reference '${{{name}}}' (write '$${{' for a literal '${{')")
        elif name not in environ:
            report(f"environment variable {name} is not set")
        else:
            return environ[name]
        return token

    return _TOKEN.sub(replace, text)


def interpolate(
    value: Any, environ: Mapping[str, str], file: str, where: tuple[KeyPart, ...] = ()
) -> tuple[Any, list[ConfigProblem]]:
    """Replace `${VAR}` in every string scalar (not in keys); `$${` yields a literal `${`."""
    problems: list[ConfigProblem] = []

    def walk(node: Any, at: tuple[KeyPart, ...]) -> Any:
        if isinstance(node, str):
            return _substitute(node, environ, lambda msg: problems.append(ConfigProblem(file, key_path(at), msg)))
        if isinstance(node, dict):
            return {k: walk(v, (*at, k if isinstance(k, str) else str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item, (*at, i)) for i, item in enumerate(node)]
        return node

    return walk(value, where), problems


def _expand(pattern: str, base_dir: str) -> list[str]:
    # Escaped so that a directory name like `[prod]` is taken literally, not as a character class.
    full = os.path.join(glob.escape(base_dir), pattern) if base_dir else pattern
    return sorted(match for match in glob.glob(full, recursive=True) if os.path.isfile(match))


def resolve_includes(patterns: list[Any], main_file: str) -> tuple[list[str], list[ConfigProblem]]:
    """Files named by `include`, relative to the main file, in pattern order then sorted; each once."""
    problems: list[ConfigProblem] = []
    files: list[str] = []
    main_real = os.path.realpath(main_file)
    seen: set[str] = set()
    for index, pattern in enumerate(patterns):
        where = key_path(("include", index))
        if not isinstance(pattern, str) or not pattern:
            problems.append(ConfigProblem(main_file, where, "must be a non-empty glob pattern"))
            continue
        # A broad pattern like `*.yaml` must not pull the main file in as a provider.
        matches = [m for m in _expand(pattern, os.path.dirname(main_file)) if os.path.realpath(m) != main_real]
        if not matches:
            problems.append(ConfigProblem(main_file, where, f"pattern {pattern!r} matches no file"))
        for match in matches:
            if os.path.realpath(match) not in seen:
                seen.add(os.path.realpath(match))
                files.append(match)
    return files, problems


class ProblemCollector:
    """Reads YAML files into interpolated mappings, accumulating problems instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[ConfigProblem] = []
        # Places whose ${VAR} failed: their validation errors would only repeat the same cause.
        self.unresolved: set[tuple[str, str]] = set()

    def report(self, file: str, where: Sequence[KeyPart], message: str) -> None:
        """Record a problem, unless that place already has an unresolved variable."""
        if (file, key_path(where)) not in self.unresolved:
            self.problems.append(ConfigProblem(file, key_path(where), message))

    def read_mapping(self, file: str) -> dict[Any, Any] | None:
        """The file's top-level mapping with `${VAR}` resolved, or None when it cannot be used."""
        data, problems = read_yaml(file)
        self.problems += problems
        if data is None:
            return None
        if not isinstance(data, dict):
            self.report(file, (), "the file must hold a mapping at the top level")
            return None
        result: dict[Any, Any]
        result, problems = interpolate(data, self.environ, file)
        self.problems += problems
        self.unresolved.update((p.file, p.key_path) for p in problems)
        return result

    def include(self, patterns: list[Any], main_file: str) -> list[str]:
        """Files named by `include`, reporting bad and unmatched patterns."""
        files, problems = resolve_includes(patterns, main_file)
        self.problems += problems
        return files

    def validate(
        self, model: type[ModelT], file: str, where: tuple[KeyPart, ...], data: Any, *, id_from_key: bool = False
    ) -> ModelT | None:
        """`model` validated from `data`, or None after reporting each error at its key path under `where`."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for loc, message in validation_errors(exc, model.model_fields):
                # When the id is the mapping key, the key itself is what the operator must fix.
                self.report(file, (*where, *([] if id_from_key and loc == ("id",) else loc)), message)
            return None

    def keyed_entries(
        self, file: str, section: str, raw: Any, what: str
    ) -> list[tuple[tuple[KeyPart, ...], dict[Any, Any] | None, bool]]:
        """Entries of a `section:` mapping of id to `what` settings, as `(where, fields with id, id_from_key)`.

        A missing or null section has no entries; an entry that is not a mapping is reported and
        comes with fields None; an `id:` inside an entry must equal its key.
        """
        if raw is None:
            return []
        if not isinstance(raw, dict):
            self.report(file, (section,), f"must be a mapping of {what} id to {what} settings")
            return []
        entries: list[tuple[tuple[KeyPart, ...], dict[Any, Any] | None, bool]] = []
        for key, fields in raw.items():
            where: tuple[KeyPart, ...] = (section, str(key))
            fields = {} if fields is None else fields
            if not isinstance(fields, dict):
                self.report(file, where, f"must be a mapping of {what} settings")
                entries.append((where, None, False))
                continue
            if "id" in fields and fields["id"] != key:
                self.report(file, (*where, "id"), f"disagrees with the {what}'s key {key!r}")
            entries.append((where, {**fields, "id": key}, "id" not in fields))
        return entries
