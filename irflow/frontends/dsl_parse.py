"""Parsing the irflow model DSL: text → a lark tree, with every error a located `ParseError`.

The grammar is `irflow.lark` (shipped beside this file). Lark's exceptions never
escape: `parse_tree` turns them into "expected ..." messages at `file:line:col`,
names an unclosed bracket at its opening, and refuses bracket nesting deeper than
`MAX_NESTING`.
"""

from __future__ import annotations

import functools
import importlib.resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from irflow.diagnostics import ParseError, SourceLoc, did_you_mean


@functools.cache
def _parser() -> Lark:
    """The LALR parser, built once per process.

    Building the tables takes ~80 ms; lark's `cache=True` keeps them in a file in the
    temp directory keyed by the grammar's hash (~8 ms to load, rebuilt if missing).
    """
    grammar = importlib.resources.files("irflow.frontends").joinpath("irflow.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                cache=True)


# Tokens not worth listing in "expected ..." when something more telling is expected.
_OPERATOR_TOKENS = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "FLOORDIV", "POW",
                    "COMP_OP", "AND", "OR", "LSQB"}
_KEYWORD_TOKENS = {"MODEL", "BLOCK", "RETURN", "IF", "ELIF", "ELSE", "TRUE", "FALSE", "AND",
                   "OR", "NOT"}
_STATEMENT_KEYWORDS = ["return", "if", "elif", "else"]
_TOKEN_WORDS = {"NAME": "a name", "INT": "an integer", "FLOAT": "a number",
                "STRING": "a string", "COMP_OP": "a comparison", "$END": "end of input"}


def _token_word(name: str) -> str:
    if name in _TOKEN_WORDS:
        return _TOKEN_WORDS[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


_EXPRESSION_START = {"NAME", "INT", "FLOAT", "STRING", "LPAR", "LSQB", "MINUS", "TRUE", "FALSE",
                     "NOT"}


def _expected_phrase(expected: set[str] | frozenset[str]) -> str:
    names = set(expected)
    words: set[str] = set()
    if {"NAME", "INT", "LPAR"} <= names:
        names -= _EXPRESSION_START
        words.add("an expression")
    if names - _OPERATOR_TOKENS or words:
        names -= _OPERATOR_TOKENS
    words |= {_token_word(n) for n in names}
    ordered = sorted(words)
    if len(ordered) <= 1:
        return "".join(ordered)
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _acceptable(e: UnexpectedToken) -> set[str]:
    """The terminals the parser would really accept here.

    `e.expected` of an LALR parser may list tokens that only a reduction would reject;
    asking the interactive parser is exact (and only costs time on an error).
    """
    try:
        return set(e.interactive_parser.accepts()) - {"$END"}
    except Exception:  # noqa: BLE001 - fall back to lark's own (over-approximate) set
        return set(e.expected)


def _unclosed_bracket(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket left open at the end of `text` (comments and strings skipped)."""
    stack: list[tuple[str, int, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for lineno, line in enumerate(text.splitlines(), 1):
        in_string = False
        for col, ch in enumerate(line, 1):
            if ch == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif ch == "#":
                break
            elif ch in "([{":
                stack.append((ch, lineno, col))
            elif ch in pairs and stack and stack[-1][0] == pairs[ch]:
                stack.pop()
    return stack[-1] if stack else None


def _translate_lark_error(e: UnexpectedInput, text: str, filename: str) -> ParseError:
    where = f"{filename}:{e.line}:{e.column}"
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            lines = text.splitlines() or [""]
            where = f"{filename}:{len(lines)}:{len(lines[-1]) + 1}"
            open_ = _unclosed_bracket(text)
            if open_ is not None:
                ch, line, col = open_
                return ParseError(f"unexpected end of input: '{ch}' at {line}:{col} is not "
                                  "closed", where)
            expected = _expected_phrase(e.expected)
            return ParseError("unexpected end of input" +
                              (f"; expected {expected}" if expected else ""), where)
        prev = (e.token_history or [None])[-1]
        if (isinstance(prev, Token) and prev.type == "NAME" and "EQUAL" in e.expected
                and tok.type != "LPAR"):
            # `retrun x`: a misspelled keyword reads as the start of an assignment
            hint = did_you_mean(prev.value, _STATEMENT_KEYWORDS, clause=True)
            if hint:
                return ParseError(f"unknown statement '{prev.value}'{hint}",
                                  f"{filename}:{prev.line}:{prev.column}")
        nouns = {"NAME": "name", "INT": "integer", "FLOAT": "number", "STRING": "string"}
        if tok.type in nouns:
            found = f"{nouns[tok.type]} '{tok.value}'"
        else:
            found = f"'{tok.value}'"
        accepted = _acceptable(e)
        expected = _expected_phrase(accepted)
        msg = f"unexpected {found}" + (f"; expected {expected}" if expected else "")
        keywords = [_token_word(n).strip("'") for n in accepted if n in _KEYWORD_TOKENS]
        if tok.type == "NAME":
            msg += did_you_mean(str(tok.value), keywords, clause=True)
        if "EQUAL" in e.expected and tok.type == "LPAR":
            # `relu(x)` as a statement: point at the call's name, not at its '('
            line = text.splitlines()[e.line - 1]
            start = len(line[: e.column - 1].rstrip())
            while start > 0 and (line[start - 1].isalnum() or line[start - 1] in "_."):
                start -= 1
            name = line[start: e.column - 1].strip()
            where = f"{filename}:{e.line}:{start + 1}"
            msg = (f"a call to '{name}' cannot stand alone; name its result: "
                   f"`y = {name}(...)`")
        elif "EQUAL" in e.expected and tok.type == "COLON":
            msg += " (options are written `name=value`)"
        return ParseError(msg, where)
    if isinstance(e, UnexpectedCharacters):
        return ParseError(f"unexpected character '{e.char}'", where)
    return ParseError(str(e).splitlines()[0], where)  # pragma: no cover - other lark errors


# Deepest bracket nesting accepted: the compiler recurses once per level (and Python's
# stack is finite); real models nest a handful of levels.
MAX_NESTING = 256


def _check_nesting(text: str, filename: str) -> None:
    """A `ParseError` at the first bracket nested deeper than `MAX_NESTING`."""
    depth, line, col = 0, 1, 1
    in_string = in_comment = False
    for ch in text:
        if ch == "\n":
            line, col, in_comment = line + 1, 0, False
        elif in_comment:
            pass
        elif ch == '"':
            in_string = not in_string
        elif in_string:
            pass
        elif ch == "#":
            in_comment = True
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ParseError(f"brackets nested more than {MAX_NESTING} deep; split the "
                                 "expression into named steps", SourceLoc(filename, line, col))
        elif ch in ")]}":
            depth -= 1
        col += 1


def parse_tree(text: str, filename: str = "<string>") -> Tree:
    """The syntax tree of a DSL program (a `ParseError` for malformed text)."""
    _check_nesting(text, filename)
    try:
        return _parser().parse(text)
    except UnexpectedInput as e:
        raise _translate_lark_error(e, text, filename) from None
    except RecursionError:
        raise ParseError("the program is nested too deeply to parse; split long expressions "
                         "into named steps", filename) from None
