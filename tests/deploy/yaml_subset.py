"""A strict parser for the subset of YAML that docker/ uses (block mappings and sequences,
flow [..] and {..} collections of scalars, quoted and plain scalars, | block literals,
comments, --- separators).

It exists so that check_deploy.py can read the compose, Prometheus, Grafana and Kubernetes
files on a machine without PyYAML; where PyYAML is installed the check also asserts that
both parsers agree on every file. Anything outside the subset is an error naming the line,
never a guess: plain scalars that YAML 1.1 and 1.2 read differently (yes/no/on/off, octal
and sexagesimal numbers) must be quoted.
"""

import re

_AMBIGUOUS = re.compile(r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|0[0-7]+|[0-9]+(:[0-5]?[0-9])+)$")
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


class YamlSubsetError(ValueError):
    pass


class _Line:
    def __init__(self, number, indent, text):
        self.number, self.indent, self.text = number, indent, text


def _strip_comment(text):
    """Drops a trailing comment (a '#' after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or text[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(token, where):
    token = token.strip()
    if token == "":
        return None
    if token[0] == '"':
        if len(token) < 2 or token[-1] != '"':
            raise YamlSubsetError(f"{where}: unterminated double-quoted scalar")
        body = token[1:-1]
        return re.sub(r'\\(["\\/nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)
    if token[0] == "'":
        if len(token) < 2 or token[-1] != "'":
            raise YamlSubsetError(f"{where}: unterminated single-quoted scalar")
        return token[1:-1].replace("''", "'")
    if token[0] in "&*!%@`|>":
        raise YamlSubsetError(f"{where}: '{token}' uses YAML outside the supported subset")
    if _AMBIGUOUS.match(token):
        raise YamlSubsetError(f"{where}: '{token}' reads differently in YAML 1.1 and 1.2; quote it")
    if token in ("true", "True", "TRUE"):
        return True
    if token in ("false", "False", "FALSE"):
        return False
    if token in ("null", "Null", "NULL", "~"):
        return None
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token)
    return token


def _split_flow(body, where):
    """Splits the inside of a flow collection at top-level commas."""
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(body):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    if quote or depth:
        raise YamlSubsetError(f"{where}: unbalanced flow collection")
    last = body[start:]
    if last.strip():
        items.append(last)
    return [item.strip() for item in items]


def _key_split(text):
    """Returns (key, rest) when `text` is `key: rest` / `key:` outside quotes, else None."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and i == 0:
            quote = ch
        elif ch in "[{" and i == 0:
            return None
        elif ch == ":" and (i + 1 == len(text) or text[i + 1] in " \t"):
            return text[:i].strip(), text[i + 1:].strip()
    return None


def _flow_or_scalar(token, where):
    token = token.strip()
    if token.startswith("["):
        if not token.endswith("]"):
            raise YamlSubsetError(f"{where}: flow sequence must end on its line")
        return [_flow_or_scalar(item, where) for item in _split_flow(token[1:-1], where)]
    if token.startswith("{"):
        if not token.endswith("}"):
            raise YamlSubsetError(f"{where}: flow mapping must end on its line")
        result = {}
        for item in _split_flow(token[1:-1], where):
            pair = _key_split(item)
            if pair is None:
                raise YamlSubsetError(f"{where}: flow mapping entry '{item}' has no 'key: value'")
            result[_scalar(pair[0], where)] = _flow_or_scalar(pair[1], where)
        return result
    return _scalar(token, where)


class _Parser:
    def __init__(self, text, source):
        self.source = source
        self.raw = text.split("\n")
        self.lines = []
        for number, raw in enumerate(self.raw, 1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlSubsetError(f"{source}:{number}: tab in indentation")
            text_part = _strip_comment(raw)
            if text_part.strip():
                self.lines.append(_Line(number, len(text_part) - len(text_part.lstrip()), text_part.strip()))
        self.pos = 0

    def where(self, line):
        return f"{self.source}:{line.number}"

    def peek(self):
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def block(self, indent):
        line = self.peek()
        if line is None or line.indent < indent:
            return None
        if line.text.startswith("- ") or line.text == "-":
            return self.sequence(line.indent)
        return self.mapping(line.indent)

    def value_after_key(self, rest, key_line, key_indent):
        """The value of `key: rest`: inline, a | literal, or the block below."""
        if rest in ("|", "|-", "|+"):
            return self.literal(key_line, key_indent, rest)
        if rest:
            return _flow_or_scalar(rest, self.where(key_line))
        nxt = self.peek()
        if nxt is None:
            return None
        if nxt.indent > key_indent:
            return self.block(nxt.indent)
        # Kubernetes style: a sequence at the key's own indentation.
        if nxt.indent == key_indent and (nxt.text.startswith("- ") or nxt.text == "-"):
            return self.sequence(key_indent)
        return None

    def mapping(self, indent):
        result = {}
        while (line := self.peek()) is not None and line.indent == indent:
            if line.text.startswith("- "):
                break
            pair = _key_split(line.text)
            if pair is None:
                raise YamlSubsetError(f"{self.where(line)}: expected 'key: value', got '{line.text}'")
            key = _scalar(pair[0], self.where(line))
            if key in result:
                raise YamlSubsetError(f"{self.where(line)}: duplicate key '{key}'")
            self.pos += 1
            result[key] = self.value_after_key(pair[1], line, indent)
        if (line := self.peek()) is not None and line.indent > indent:
            raise YamlSubsetError(f"{self.where(line)}: unexpected indentation")
        return result

    def sequence(self, indent):
        result = []
        while (line := self.peek()) is not None and line.indent == indent and (
            line.text.startswith("- ") or line.text == "-"
        ):
            body = line.text[1:].strip()
            self.pos += 1
            if not body:
                result.append(self.block(indent + 1))
                continue
            pair = _key_split(body)
            if pair is None or body.startswith(("[", "{", '"', "'")):
                result.append(_flow_or_scalar(body, self.where(line)))
                continue
            # A mapping whose first key shares the dash's line: its keys sit at dash + 2.
            item_indent = indent + (len(line.text) - len(body))
            key = _scalar(pair[0], self.where(line))
            item = {key: self.value_after_key(pair[1], line, item_indent)}
            nxt = self.peek()
            if nxt is not None and nxt.indent == item_indent and not nxt.text.startswith("- "):
                rest = self.mapping(item_indent)
                for k in rest:
                    if k in item:
                        raise YamlSubsetError(f"{self.where(nxt)}: duplicate key '{k}'")
                item.update(rest)
            result.append(item)
        return result

    def literal(self, key_line, key_indent, style):
        """A | block: the raw lines more indented than the key, comments included."""
        start = key_line.number  # raw index of the first line after the key
        body, block_indent, end = [], None, start
        for i in range(start, len(self.raw)):
            raw = self.raw[i]
            if raw.strip() == "":
                body.append("")
                end = i + 1
                continue
            ind = len(raw) - len(raw.lstrip())
            if block_indent is None:
                block_indent = ind
            if ind < block_indent or ind <= key_indent:
                break
            body.append(raw[block_indent:])
            end = i + 1
        while self.pos < len(self.lines) and self.lines[self.pos].number <= end:
            self.pos += 1
        text = "\n".join(body)
        if style == "|-":
            return text.rstrip("\n")
        if style == "|+":
            return text + "\n"
        return text.rstrip("\n") + "\n"


def load_all(text, source="<yaml>"):
    """Parses every document of `text` (separated by --- lines)."""
    docs, current = [], []
    for raw in text.split("\n"):
        if raw.rstrip() == "---":
            docs.append("\n".join(current))
            current = []
        else:
            current.append(raw)
    docs.append("\n".join(current))
    result = []
    for doc in docs:
        parser = _Parser(doc, source)
        if not parser.lines:
            continue
        value = parser.block(0)
        if parser.peek() is not None:
            raise YamlSubsetError(f"{parser.where(parser.peek())}: unexpected content")
        result.append(value)
    return result
