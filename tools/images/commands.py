"""The commands a POSIX sh script calls, read from its text: the tools image must have every one of them.

A small reader for the shell the platform's scripts are written in (dash's POSIX sh): quoting, command
substitution (also inside double quotes and unquoted here-documents), arithmetic expansion, redirections,
assignments before a command, `if`/`while`/`for`/`case` and function definitions. A word in command position is a
command; so is the first word after `exec`, `command`, `nohup`, `env` (past its assignments) and `xargs`. A
command named by an expansion (`$tool`, `"$@"`) cannot be known from the text and is reported as dynamic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case", "esac"})
# Command position again after these words (the word itself is not a command).
OPENERS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "{", "!"})
# These run their first non-option argument as a command; `timeout DURATION COMMAND` its second.
RUNNERS = frozenset({"exec", "command", "nohup", "env", "xargs", "time", "timeout"})
# These run a string as a script in the same image: `sh -c STRING`, `su USER -c STRING`, `trap STRING SIGNAL`.
SHELLS = frozenset({"sh", "/bin/sh", "bash", "/bin/bash", "dash", "su"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FROM_POSITIONAL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=\$\{?([1-9])\}?$")
_EXPANSION = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*|[1-9@*])\}?$")
_REDIRECT = re.compile(r"[0-9]*(<<-|<<|>>|>&|<&|<>|>\||<|>)")
_OPERATORS = (";;", "&&", "||", ";", "&", "|", "(", ")", "\n")


@dataclass
class Found:
    commands: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    dynamic: set[str] = field(default_factory=set)  # command words that are expansions
    scripts: set[str] = field(default_factory=set)  # files run as scripts: `sh "$SCRIPTS/store-dump.sh"`
    # A function that runs one of its arguments (`cloud() { tool=$2; shift 2; timeout 60 "$tool" "$@"; }`): the
    # positions it runs, and every call's arguments, so `cloud 600 barman-cloud-wal-restore ...` names the command.
    runs_argument: dict[str, set[int]] = field(default_factory=dict)
    positional: dict[str, dict[str, int]] = field(default_factory=dict)  # function -> variable -> $N it holds
    calls: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class _Word:
    text: str
    substitutions: list[str]  # sources of $(...) inside the word
    quoted: bool  # any quoting or expansion: not a reserved word, maybe dynamic


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, body expands)
        self.bodies: list[str] = []  # unquoted here-document bodies: their $(...) run

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def _until_close(self, start: int, open_: str, close: str) -> int:
        """Index just past the `close` that balances `open_` at `start`, skipping quotes."""
        depth = 0
        j = start
        while j < len(self.s):
            c = self.s[j]
            if c == "\\":
                j += 2
                continue
            if c == "'" and open_ == "(":
                j = self.s.index("'", j + 1) + 1
                continue
            if c == '"' and open_ == "(":
                j = self._skip_double(j + 1)
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise ValueError(f"unbalanced {open_!r} at {start}")

    def _skip_double(self, j: int) -> int:
        while self.s[j] != '"':
            if self.s[j] == "\\":
                j += 2
            elif self.s.startswith("$(", j):
                j = self._until_close(j + 1, "(", ")")
            else:
                j += 1
        return j + 1

    def _dollar(self, subs: list[str]) -> str:
        """At `$`: consume an expansion, noting a command substitution's source."""
        s, i = self.s, self.i
        if s.startswith("$((", i):
            end = self._until_close(i + 1, "(", ")")
        elif s.startswith("$(", i):
            end = self._until_close(i + 1, "(", ")")
            subs.append(s[i + 2 : end - 1])
        elif s.startswith("${", i):
            end = self._until_close(i + 1, "{", "}")
        else:
            end = i + 1
        self.i = end
        return s[i:end]

    def _double(self, out: list[str], subs: list[str]) -> None:
        """At an opening double quote: its text, expansions included, onto `out`."""
        s = self.s
        self.i += 1
        while s[self.i] != '"':
            if s[self.i] == "\\":
                out.append(s[self.i + 1])
                self.i += 2
            elif s[self.i] == "$":
                out.append(self._dollar(subs))
            else:
                out.append(s[self.i])
                self.i += 1
        self.i += 1

    def word(self) -> _Word | None:
        s = self.s
        out: list[str] = []
        subs: list[str] = []
        quoted = False
        while self.i < len(s):
            c = s[self.i]
            if c in " \t" or c in ";&|()<>\n":
                break
            if c == "\\":
                if self.peek(2) == "\\\n":
                    self.i += 2
                    continue
                out.append(s[self.i + 1 : self.i + 2])
                quoted = True
                self.i += 2
            elif c == "'":
                end = s.index("'", self.i + 1)
                out.append(s[self.i + 1 : end])
                quoted = True
                self.i = end + 1
            elif c == '"':
                quoted = True
                self._double(out, subs)
            elif c == "$":
                quoted = True
                out.append(self._dollar(subs))
            else:
                out.append(c)
                self.i += 1
        if not out and not quoted:
            return None
        return _Word("".join(out), subs, quoted)

    def newline(self) -> None:
        """Past a newline: read the bodies of the here-documents opened on that line."""
        for delimiter, expands in self.heredocs:
            lines = []
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i : end]
                self.i = end + 1
                if line.strip("\t") == delimiter:
                    break
                lines.append(line)
            if expands:
                self.bodies.append("\n".join(lines))
        self.heredocs = []


def _tokens(reader: _Reader) -> list[tuple[str, _Word | str]]:
    """('word', _Word) | ('op', operator) | ('redir', operator)."""
    out: list[tuple[str, _Word | str]] = []
    s = reader.s
    pending_heredoc = False
    while reader.i < len(s):
        c = s[reader.i]
        if c in " \t" or s.startswith("\\\n", reader.i):
            reader.i += 1 if c in " \t" else 2
            continue
        if c == "#" and (reader.i == 0 or s[reader.i - 1] in " \t\n;&|()"):
            end = s.find("\n", reader.i)
            reader.i = len(s) if end < 0 else end
            continue
        redirect = _REDIRECT.match(s, reader.i)
        if redirect and (reader.i == 0 or s[reader.i - 1] in " \t;&|()\n" or redirect[0][0] in "<>"):
            reader.i = redirect.end()
            out.append(("redir", redirect[1]))
            pending_heredoc = redirect[1] in ("<<", "<<-")
            continue
        op = next((o for o in _OPERATORS if s.startswith(o, reader.i)), None)
        if op is not None:
            reader.i += len(op)
            out.append(("op", op))
            if op == "\n":
                reader.newline()
            continue
        word = reader.word()
        if word is None:
            raise ValueError(f"cannot read the script at offset {reader.i}: {s[reader.i : reader.i + 20]!r}")
        if pending_heredoc:
            reader.heredocs.append((word.text, not word.quoted))
            pending_heredoc = False
        out.append(("word", word))
    return out


def _substitutions(text: str) -> list[str]:
    """The command substitutions of an unquoted here-document's body."""
    reader = _Reader(text)
    subs: list[str] = []
    while reader.i < len(text):
        if text[reader.i] == "\\":
            reader.i += 2
        elif text[reader.i] == "$":
            reader._dollar(subs)
        else:
            reader.i += 1
    return subs


@dataclass
class _Compound:
    """Where the reader is in `case` and `for`, whose words are not commands."""

    case: int = 0  # 1: the case word, up to `in`; 2: at a pattern; 3: a pattern's commands
    in_for: bool = False

    def operator(self, op: str) -> None:
        if op == ";;":
            self.case = 2
        elif op == ")" and self.case == 2:
            self.case = 3
        if op in (";", "\n", "&&", "||", "|", "&"):
            self.in_for = False

    def skips(self, keyword: str, first: bool) -> bool:
        """Whether this word (`keyword`: its text when unquoted) is no command word: a pattern, a keyword..."""
        if self.case == 1:
            self.case = 2 if keyword == "in" else 1
            return True
        if self.case == 2:
            self.case = 0 if keyword == "esac" else 2
            return True
        if self.in_for:
            return True
        if first and keyword in RESERVED | OPENERS | {"}"}:
            self.case = 1 if keyword == "case" else self.case
            self.in_for = keyword == "for"
            return True
        return False


def scan(script: str) -> Found:
    """Every command `script` calls, the functions it defines (not commands) and the script files it runs."""
    found = Found()
    _scan(script, found)
    for name, args in found.calls:
        for n in sorted(found.runs_argument.get(name, ())):
            if n <= len(args):
                (found.dynamic if "$" in args[n - 1] else found.commands).add(args[n - 1])
    found.commands -= found.functions
    return found


def _scan(script: str, found: Found) -> None:
    reader = _Reader(script)
    tokens = _tokens(reader)
    nested: list[str] = []
    current: list[_Word] = []
    compound = _Compound()
    redirected = False
    braces = 0
    defining: str | None = None  # a function whose `{` comes next
    inside: list[tuple[str, int]] = []  # the functions being read, with the brace depth their body opened at
    n = 0
    while n < len(tokens):
        kind, value = tokens[n]
        n += 1
        if isinstance(value, str):
            redirected = kind == "redir"
            if kind == "op" and value == "(" and len(current) == 1 and tokens[n : n + 1] == [("op", ")")]:
                defining = current[0].text  # name() { ...; }
                found.functions.add(defining)
                current = []
                n += 1
            elif kind == "op":
                compound.operator(value)
                _command(current, found, inside[-1][0] if inside else None)
                current = []
            continue
        nested.extend(value.substitutions)
        if redirected:
            redirected = False
            continue
        if not current and not value.quoted and value.text in ("{", "}"):
            if value.text == "{":
                braces += 1
                if defining is not None:
                    inside.append((defining, braces))
                    defining = None
            else:
                if inside and inside[-1][1] == braces:
                    inside.pop()
                braces -= 1
        if not compound.skips("" if value.quoted else value.text, not current):
            current.append(value)
    _command(current, found, inside[-1][0] if inside else None)
    for source in nested + [sub for body in reader.bodies for sub in _substitutions(body)]:
        _scan(source, found)


def _command(words: list[_Word], found: Found, function: str | None) -> None:
    """One simple command (inside `function`, or at the top): its command word, and what it runs in turn."""
    while words and _ASSIGNMENT.match(words[0].text):
        held = _FROM_POSITIONAL.match(words[0].text)
        if function is not None and held:
            found.positional.setdefault(function, {})[held[1]] = int(held[2])
        words = words[1:]  # NAME=value before the command, or alone
    if not words:
        return
    name, args = words[0], words[1:]
    expansion = _EXPANSION.match(name.text)
    if function is not None and expansion:
        # "$tool" after tool=$2, "$2", "$@": the function runs what its caller passes there.
        variable = expansion[1]
        holds = found.positional.get(function, {}).get(variable)
        index = holds or (1 if variable in "@*" else int(variable) if variable.isdigit() else 0)
        if index:
            found.runs_argument.setdefault(function, set()).add(index)
        else:
            found.dynamic.add(name.text)
        return
    _add(found, name)
    texts = [a.text for a in args]
    if "$" not in name.text:
        found.calls.append((name.text, texts))
    if name.text == "command" and {"-v", "-V"} & set(texts):
        return  # a look-up (`command -v zstd || ...`), not a call
    if name.text in RUNNERS:
        rest = [a for a in args if not a.text.startswith("-") and not _ASSIGNMENT.match(a.text)]
        _command(rest[1:] if name.text == "timeout" else rest, found, function)
    elif name.text in SHELLS and "-c" in texts and texts.index("-c") + 1 < len(texts):
        _scan(texts[texts.index("-c") + 1], found)
    elif name.text in SHELLS and name.text != "su" and texts and not texts[0].startswith("-"):
        found.scripts.add(texts[0])
    elif name.text in ("trap", "eval") and texts and texts[0] not in ("", "-"):
        _scan(texts[0], found)  # `trap - EXIT` resets, `trap '' TERM` ignores: neither runs anything


def _add(found: Found, word: _Word) -> None:
    if "$" in word.text or "`" in word.text:
        found.dynamic.add(word.text)
    else:
        found.commands.add(word.text)
