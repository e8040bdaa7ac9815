"""Reads Dockerfiles and .dockerignore files the way Docker does, for check_deploy.py:
instructions with line continuations and build-argument substitution, build stages,
COPY sources, and the .dockerignore exclusion rules (Go filepath.Match patterns with
`**`, `!` exceptions, the last matching pattern deciding, a parent folder's match
covering its contents).
"""

import json
import re
import shlex


class DockerfileError(ValueError):
    pass


class Instruction:
    def __init__(self, line, keyword, args):
        self.line, self.keyword, self.args = line, keyword, args

    def exec_form(self):
        """The JSON-array form's list, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise DockerfileError(f"line {self.line}: {self.keyword} looks like JSON but is not: {e}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"line {self.line}: {self.keyword} must be a JSON array of strings")
        return value


class Stage:
    def __init__(self, index, image, name):
        self.index, self.image, self.name = index, image, name
        self.instructions = []

    def all(self, keyword):
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword):
        found = self.all(keyword)
        return found[-1] if found else None


class Copy:
    def __init__(self, instruction, flags, sources, dest):
        self.instruction, self.flags, self.sources, self.dest = instruction, flags, sources, dest


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute(text, variables):
    """${NAME}, ${NAME:-default} and $NAME with the build arguments' defaults."""
    def repl(m):
        name = m.group(1) or m.group(3)
        if name in variables and variables[name] != "":
            return variables[name]
        return m.group(2) or ""
    return _VAR.sub(repl, text)


class Dockerfile:
    def __init__(self, text, source):
        self.source = source
        self.global_args = {}
        self.stages = []
        self._parse(text)

    def _parse(self, text):
        logical, start = "", None
        for number, raw in enumerate(text.split("\n"), 1):
            stripped = raw.strip()
            if stripped.startswith("#") or (not stripped and not logical):
                continue  # comments vanish even inside a continued instruction
            if start is None:
                start = number
            if stripped.endswith("\\"):
                logical += stripped[:-1] + " "
                continue
            logical += stripped
            self._instruction(start, logical)
            logical, start = "", None
        if logical.strip():
            raise DockerfileError(f"{self.source}:{start}: the file ends inside a continued line")

    def _instruction(self, line, text):
        keyword, _, args = text.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not self.stages:
            name, _, default = args.strip().partition("=")
            self.global_args[name] = default.strip('"')
            return
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            image = substitute(words[0], self.global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            self.stages.append(Stage(len(self.stages), image, name))
            return
        if not self.stages:
            raise DockerfileError(f"{self.source}:{line}: {keyword} before the first FROM")
        self.stages[-1].instructions.append(Instruction(line, keyword, args))

    def stage_args(self, stage):
        """Build arguments visible in a stage: its own ARGs with their defaults."""
        variables = {}
        for ins in stage.all("ARG"):
            name, _, default = ins.args.strip().partition("=")
            variables[name] = default.strip('"') if default else self.global_args.get(name, "")
        return variables

    def copies(self, stage):
        result = []
        variables = self.stage_args(stage)
        for ins in stage.instructions:
            if ins.keyword not in ("COPY", "ADD"):
                continue
            form = ins.exec_form()
            words = form if form is not None else shlex.split(ins.args)
            flags = {}
            while words and words[0].startswith("--"):
                key, _, value = words.pop(0)[2:].partition("=")
                flags[key] = value
            if len(words) < 2:
                raise DockerfileError(f"{self.source}:{ins.line}: {ins.keyword} needs a source and a destination")
            words = [substitute(w, variables) for w in words]
            result.append(Copy(ins, flags, words[:-1], words[-1]))
        return result

    def stage_named(self, name):
        for stage in self.stages:
            if stage.name == name or str(stage.index) == name:
                return stage
        return None


def _pattern_regex(pattern):
    """Go filepath.Match plus `**` (any number of folders), as Docker's patternmatcher."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                    out += "(.*/)?"  # zero or more leading folders
                else:
                    out += ".*"
                continue
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unterminated '[' in .dockerignore pattern '{pattern}'")
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def _clean(path):
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts:
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class DockerIgnore:
    def __init__(self, text):
        self.patterns = []  # (regex, is_exception, original)
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            body = _clean(line[1:].strip() if exception else line)
            if body:
                self.patterns.append((_pattern_regex(body), exception, line))

    def excluded(self, path):
        """True when `path` (relative to the context) is left out of the build context."""
        path = _clean(path)
        parents = path.split("/")[:-1]
        matched = False
        for regex, exception, _ in self.patterns:
            hit = bool(regex.match(path))
            if not hit:
                hit = any(regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not exception
        return matched
