"""A small FileCheck: check printed IR against `// CHECK...` directives, as LLVM's FileCheck.

    >>> filecheck('''
    ... // CHECK-LABEL: func.func @main
    ... // CHECK:       %[[Y:.*]] = nn.conv2d %x
    ... // CHECK-SAME:  {act = "relu"}
    ... // CHECK-NOT:   nn.relu
    ... // CHECK-NEXT:  func.return %[[Y]]
    ... ''', printed_ir)

Directives (the prefix, `CHECK` by default, must be the first word of a `//` comment):

| directive       | meaning                                                                     |
|-----------------|-----------------------------------------------------------------------------|
| `CHECK:`        | the pattern occurs at or after the end of the previous match                |
| `CHECK-NEXT:`   | ... and on the line right after the previous match's line                   |
| `CHECK-SAME:`   | ... on the same line as the previous match, after it                        |
| `CHECK-EMPTY:`  | the next line is empty                                                      |
| `CHECK-NOT:`    | the pattern does not occur between the previous and the next match          |
| `CHECK-DAG:`    | a run of DAG directives matches in any order (non-overlapping)              |
| `CHECK-LABEL:`  | matched first; splits the input into blocks that the other checks stay in   |

Patterns match within one line. Literal text matches literally, with runs of spaces
matching any run of horizontal whitespace; `{{regex}}` is a regular expression;
`[[NAME:regex]]` captures what `regex` matched into NAME; `[[NAME]]` matches the text
captured last. MLIR's `%[[X:.*]]` idiom therefore works as written. A `[[` not followed
by `NAME]]` or `NAME:` is literal text, so `dense<[[1.0]]>` needs no escaping.

A malformed check file is an error (`FileCheckError`), never a silently passing check:
an unknown directive (`CHECK-NXT:`), a directive without its colon (`// CHECK-NEXT  %6`),
an empty pattern, a use of an undefined variable, a bad regex, or no directive at all.
A check that does not hold raises `CheckFailure` (an `AssertionError`) that shows the
directive, its line, and the output around where scanning stopped.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

DIRECTIVES = ("", "-NEXT", "-SAME", "-EMPTY", "-NOT", "-DAG", "-LABEL")
CASE_SEPARATOR = re.compile(r"^\s*//\s*-----\s*$", re.MULTILINE)


class FileCheckError(Exception):
    """The check file itself is malformed."""


class CheckFailure(AssertionError):
    """The input does not satisfy a directive."""


@dataclass(frozen=True)
class Directive:
    kind: str  # "CHECK", "NEXT", "SAME", "EMPTY", "NOT", "DAG", "LABEL"
    pattern: str
    line: int  # 1-based line in the check text
    spelled: str  # as written, e.g. "CHECK-NEXT"

    def __str__(self) -> str:
        return f"{self.spelled}: {self.pattern}"


# --------------------------------------------------------------------------------------
# Parsing the check text


def parse_directives(text: str, *, prefix: str = "CHECK", filename: str = "<checks>",
                     first_line: int = 1) -> list[Directive]:
    """All directives in `text` (line numbers offset by `first_line - 1`)."""
    known = {prefix + suffix: (suffix[1:] or "CHECK") for suffix in DIRECTIVES}
    head = re.compile(r"^\s*//\s*([A-Za-z][A-Za-z0-9_-]*)(\s*)(:?)(.*)$")
    out: list[Directive] = []
    for i, line in enumerate(text.splitlines()):
        lineno = i + first_line
        m = head.match(line)
        if m is None:
            continue
        word, space, colon, rest = m.groups()
        where = f"{filename}:{lineno}"
        if word in known:
            if not colon:
                raise FileCheckError(f"{where}: directive '{word}' is missing its colon "
                                     f"(write '{word}:'): {line.strip()}")
            kind = known[word]
            pattern = rest.strip()
            if kind == "EMPTY":
                if pattern:
                    raise FileCheckError(f"{where}: '{word}:' takes no pattern, got '{pattern}'")
            elif not pattern:
                raise FileCheckError(f"{where}: '{word}:' has an empty pattern")
            out.append(Directive(kind, pattern, lineno, word))
            continue
        if _looks_like_directive(word, prefix, known):
            close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}:'?)" if close else ""
            raise FileCheckError(f"{where}: unknown directive '{word}'{hint}: {line.strip()}")
    return out


def _looks_like_directive(word: str, prefix: str, known: dict[str, str]) -> bool:
    if word.startswith(prefix + "-") or word.startswith(prefix + "_"):
        return True  # CHECK-NXT, CHECK_NEXT, CHECK-COUNT-2 ...
    if word.upper() != word or len(word) < 4:
        return False  # prose, or a short all-caps word such as "NB"
    # All-caps words close to a directive: CHEK, CHECKNEXT, CHCK-LABEL.
    return bool(difflib.get_close_matches(word, list(known), n=1, cutoff=0.75))


# --------------------------------------------------------------------------------------
# Pattern -> regex


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
# `[[` starts a variable only when followed by a name and `]]` or `:` (or `#`, numeric).
_VAR_START = re.compile(r"\[\[(#|[A-Za-z_][A-Za-z0-9_]*(\]\]|:))")


def _compile(d: Directive, variables: dict[str, str],
             where: str) -> tuple[re.Pattern[str], list[str]]:
    """The regex for a directive given the current variables, and the names it defines."""
    p, i = d.pattern, 0
    parts: list[str] = []
    defined: list[str] = []
    while i < len(p):
        if p.startswith("{{", i):
            end = p.find("}}", i + 2)
            if end < 0:
                raise FileCheckError(f"{where}: unterminated '{{{{' in '{d.pattern}'")
            while p.startswith("}", end + 2):  # a regex ending in '}' (`{{a{2}}}`)
                end += 1
            parts.append(f"(?:{_checked_regex(p[i + 2:end], d, where)})")
            i = end + 2
        elif p.startswith("[[", i) and not _VAR_START.match(p, i):
            parts.append(re.escape("["))  # a literal bracket, as in `dense<[[1.0]]>`
            i += 1
        elif p.startswith("[[", i):
            end = p.find("]]", i + 2)
            if end < 0:
                raise FileCheckError(f"{where}: unterminated '[[' in '{d.pattern}'")
            body = p[i + 2:end]
            name, colon, regex = body.partition(":")
            if name.startswith("#"):
                raise FileCheckError(f"{where}: numeric variables ('[[#...]]') are not supported")
            if not _VAR_NAME.match(name):
                raise FileCheckError(f"{where}: bad variable name '{name}' in '[[{body}]]'")
            if colon:
                if d.kind in ("LABEL", "NOT"):
                    raise FileCheckError(f"{where}: {d.spelled} cannot define variables")
                if name in defined:
                    raise FileCheckError(f"{where}: variable '{name}' defined twice in one line")
                parts.append(f"(?P<v_{name}>{_checked_regex(regex, d, where)})")
                defined.append(name)
            elif name in defined:
                parts.append(f"(?P=v_{name})")
            elif name in variables:
                parts.append(re.escape(variables[name]))
            else:
                raise FileCheckError(f"{where}: use of undefined variable '[[{name}]]' "
                                     f"(define it first with '[[{name}:regex]]')")
            i = end + 2
        elif p[i] in " \t":
            j = i
            while j < len(p) and p[j] in " \t":
                j += 1
            parts.append(r"[ \t]+")
            i = j
        else:
            j = i
            while j < len(p) and p[j] not in " \t" and not p.startswith(("{{", "[["), j):
                j += 1
            parts.append(re.escape(p[i:j]))
            i = j
    return re.compile("".join(parts)), defined


def _checked_regex(regex: str, d: Directive, where: str) -> str:
    try:
        re.compile(regex)
    except re.error as e:
        raise FileCheckError(f"{where}: bad regex '{regex}' in '{d}': {e}") from None
    return regex  # its own groups are harmless: variables are read by group name


# --------------------------------------------------------------------------------------
# Matching


@dataclass
class _Match:
    line: int  # 0-based line index in the input
    start: int
    end: int


@dataclass
class _Checker:
    lines: list[str]
    filename: str
    input_name: str
    variables: dict[str, str] = field(default_factory=dict)

    def where(self, d: Directive) -> str:
        return f"{self.filename}:{d.line}"

    def search(self, d: Directive, line: int, col: int, end: tuple[int, int],
               claimed: list[_Match] | None = None) -> _Match | None:
        """First match of `d` at or after (line, col), before `end`; defines its variables."""
        regex, defined = _compile(d, self.variables, self.where(d))
        end_line, end_col = end
        for li in range(line, min(end_line + 1, len(self.lines))):
            text = self.lines[li] if li < end_line else self.lines[li][:end_col]
            pos = col if li == line else 0
            while pos <= len(text):
                m = regex.search(text, pos)
                if m is None:
                    break
                if claimed and any(c.line == li and m.start() < c.end and c.start < m.end()
                                   for c in claimed):
                    pos = m.start() + 1  # DAG: overlaps a match already claimed
                    continue
                for name in defined:
                    self.variables[name] = m.group(f"v_{name}")
                return _Match(li, m.start(), m.end())
        return None

    def fail(self, d: Directive, message: str, at_line: int, extra: str = "") -> CheckFailure:
        lo, hi = max(0, at_line - 4), min(len(self.lines), at_line + 6)
        context = "\n".join(
            f"{'>' if i == at_line else ' '} {i + 1:4d} | {self.lines[i]}" for i in range(lo, hi)
        )
        return CheckFailure(
            f"{self.where(d)}: error: {d.spelled}: {message}\n"
            f"  {d.spelled}: {d.pattern}\n"
            f"{self.input_name}:{at_line + 1}: note: scanning from here\n{context}"
            + (f"\n{extra}" if extra else "")
        )

    def closest(self, d: Directive, line: int) -> str:
        literal = re.sub(r"\{\{.*?\}\}|\[\[.*?\]\]", "", d.pattern)
        candidates = self.lines[line:]
        best = difflib.get_close_matches(literal.strip(), [c.strip() for c in candidates],
                                         n=1, cutoff=0.5)
        if not best:
            return ""
        idx = line + [c.strip() for c in candidates].index(best[0])
        return f"note: possible intended match at {self.input_name}:{idx + 1}: {best[0]}"


def filecheck(checks: str | list[Directive], output: str, *, prefix: str = "CHECK",
              filename: str = "<checks>", input_name: str = "<output>",
              first_line: int = 1) -> None:
    """Check `output` against the directives in `checks` (text or parsed directives).

    `first_line` is the line of `checks` in its file, so messages name the file's lines.
    """
    directives = (parse_directives(checks, prefix=prefix, filename=filename,
                                   first_line=first_line)
                  if isinstance(checks, str) else checks)
    if not directives:
        raise FileCheckError(f"{filename}: no '{prefix}' directives found")
    lines = output.splitlines()
    checker = _Checker(lines, filename, input_name)
    end_of_input = (len(lines), 0)

    # Labels first: they split the input into blocks.
    groups: list[tuple[Directive | None, list[Directive]]] = [(None, [])]
    for d in directives:
        if d.kind == "LABEL":
            groups.append((d, []))
        else:
            groups[-1][1].append(d)
    label_matches: list[_Match | None] = [None]
    line, col = 0, 0
    for label, _ in groups[1:]:
        assert label is not None
        m = checker.search(label, line, col, end_of_input)
        if m is None:
            raise checker.fail(label, "expected string not found in input", line,
                               checker.closest(label, line))
        label_matches.append(m)
        line, col = m.line, m.end

    for k, (_, body) in enumerate(groups):
        start = label_matches[k]
        nxt = label_matches[k + 1] if k + 1 < len(label_matches) else None
        end = (nxt.line, nxt.start) if nxt is not None else end_of_input
        _check_block(checker, body, start, end)


def _check_block(checker: _Checker, body: list[Directive], prev: _Match | None,
                 end: tuple[int, int]) -> None:
    pending_not: list[Directive] = []
    pos = (prev.line, prev.end) if prev is not None else (0, 0)
    i = 0
    while i < len(body):
        d = body[i]
        if d.kind == "NOT":
            pending_not.append(d)
            i += 1
            continue
        if d.kind in ("NEXT", "SAME", "EMPTY") and prev is None:
            raise FileCheckError(f"{checker.where(d)}: '{d.spelled}:' needs a previous match "
                                 "(a CHECK or CHECK-LABEL before it)")
        if d.kind == "DAG":
            group = []
            while i < len(body) and body[i].kind == "DAG":
                group.append(body[i])
                i += 1
            claimed: list[_Match] = []
            for g in group:
                m = checker.search(g, pos[0], pos[1], end, claimed)
                if m is None:
                    raise checker.fail(g, "expected string not found in input", pos[0],
                                       checker.closest(g, pos[0]))
                claimed.append(m)
            first = min(claimed, key=lambda m: (m.line, m.start))
            _check_nots(checker, pending_not, pos, (first.line, first.start))
            pending_not = []
            prev = max(claimed, key=lambda m: (m.line, m.end))
            pos = (prev.line, prev.end)
            continue
        m = _match_positive(checker, d, prev, pos, end)
        _check_nots(checker, pending_not, pos, (m.line, m.start))
        pending_not = []
        prev, pos = m, (m.line, m.end)
        i += 1
    _check_nots(checker, pending_not, pos, end)


def _match_positive(checker: _Checker, d: Directive, prev: _Match | None, pos: tuple[int, int],
                    end: tuple[int, int]) -> _Match:
    lines = checker.lines
    if d.kind == "EMPTY":
        assert prev is not None
        nxt = prev.line + 1
        if nxt >= min(end[0] + 1, len(lines)) or lines[nxt].strip():
            raise checker.fail(d, "the next line is not empty", min(nxt, len(lines) - 1))
        return _Match(nxt, 0, 0)
    if d.kind == "SAME":
        assert prev is not None
        m = checker.search(d, prev.line, prev.end, (prev.line, len(lines[prev.line])))
        if m is None:
            raise checker.fail(d, "expected string not found on the line of the previous "
                               "match", prev.line)
        return m
    m = checker.search(d, pos[0], pos[1], end)
    if m is None:
        raise checker.fail(d, "expected string not found in input", pos[0],
                           checker.closest(d, pos[0]))
    if d.kind == "NEXT":
        assert prev is not None
        if m.line != prev.line + 1:
            what = ("on the same line as" if m.line == prev.line
                    else f"{m.line - prev.line} lines after")
            raise checker.fail(
                d, f"is not on the line after the previous match (found {what} it, "
                f"at line {m.line + 1})", min(prev.line + 1, len(lines) - 1))
    return m


def _check_nots(checker: _Checker, nots: list[Directive], start: tuple[int, int],
                end: tuple[int, int]) -> None:
    for d in nots:
        m = checker.search(d, start[0], start[1], end)
        if m is not None:
            raise checker.fail(d, f"excluded string found in input (line {m.line + 1}: "
                               f"'{checker.lines[m.line].strip()}')", m.line)


# --------------------------------------------------------------------------------------
# Test files


@dataclass(frozen=True)
class Case:
    """One `// -----`-separated part of a test file."""

    text: str
    first_line: int  # 1-based line of `text`'s first line in the file
    index: int


def split_cases(text: str) -> list[Case]:
    """Split a test file on `// -----` lines, keeping line numbers."""
    cases: list[Case] = []
    start, line = 0, 1
    for m in CASE_SEPARATOR.finditer(text):
        chunk = text[start:m.start()]
        cases.append(Case(chunk, line, len(cases)))
        line += chunk.count("\n") + m.group(0).count("\n")
        start = m.end()
        if start < len(text) and text[start] == "\n":
            start += 1
            line += 1
    cases.append(Case(text[start:], line, len(cases)))
    return [c for c in cases if c.text.strip()]


__all__ = ["filecheck", "parse_directives", "split_cases", "Case", "Directive",
           "FileCheckError", "CheckFailure"]
