"""A pygments lexer for MLIR's textual IR (pygments ships none), for `irflow.notebook`.

    >>> from pygments import highlight
    >>> from pygments.formatters import HtmlFormatter
    >>> highlight(ir_text, MLIRLexer(), HtmlFormatter())
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)


class MLIRLexer(RegexLexer):
    """MLIR's textual IR (custom and generic forms), enough to colour irflow's dialects."""

    name = "MLIR"
    aliases = ["mlir"]
    filenames = ["*.mlir"]
    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"//.*?$", Comment.Single),
            (r'"(\\\\|\\"|[^"])*"', String.Double),
            (r"%[\w.$\-#]+", Name.Variable),
            (r"\^[\w.$\-]+", Name.Label),
            (r"@[\w.$\-]+", Name.Function),
            (r"(#)([\w.$\-]+)", bygroups(Operator, Name.Attribute)),
            (r"(!)([\w.$\-]+)", bygroups(Operator, Keyword.Type)),
            (r"\b(tensor|memref|vector|index|none|[fi](?:1|4|8|16|32|64)|bf16|ui\d+|si\d+)\b",
             Keyword.Type),
            (r"\b(loc|array|dense|true|false|unit|affine_map|to)\b", Keyword),
            (r"\b[a-z_][\w]*\.[\w.]+\b", Name.Builtin),  # op names: nn.conv2d, func.func
            (r"-?\d+\.\d*(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+|-?\d+", Number),
            (r"->|[=:,()\[\]{}<>*x?]", Punctuation),
            (r"[\w.$\-]+", Text),
            (r".", Text),
        ],
    }


__all__ = ["MLIRLexer"]
