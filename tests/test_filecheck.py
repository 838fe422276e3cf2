"""The FileCheck-like checker itself: each directive on inputs it must accept and reject."""

from __future__ import annotations

import pytest
from filecheck import CheckFailure, FileCheckError, filecheck, parse_directives, split_cases

IR = """\
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.relu %x : tensor<4xf32>
  %1 = nn.add %0, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>

  func.return %1 : tensor<4xf32>
}
func.func @other(%y: tensor<2xf32>) -> tensor<2xf32> {
  %0 = nn.sigmoid %y : tensor<2xf32>
  func.return %0 : tensor<2xf32>
}
"""


def ok(checks: str) -> None:
    filecheck(checks, IR)


def fails(checks: str, *fragments: str) -> str:
    with pytest.raises(CheckFailure) as info:
        filecheck(checks, IR)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def malformed(checks: str, *fragments: str) -> None:
    with pytest.raises(FileCheckError) as info:
        filecheck(checks, IR)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


# -- CHECK -------------------------------------------------------------------------------


def test_check_matches_in_order():
    ok("// CHECK: nn.relu\n// CHECK: nn.add\n// CHECK: func.return")


def test_check_fails_when_out_of_order():
    fails("// CHECK: nn.add\n// CHECK: nn.relu", "expected string not found", "CHECK: nn.relu")


def test_check_fails_when_absent_and_points_at_the_directive_line():
    msg = fails("// CHECK: nn.relu\n// CHECK: nn.conv2d", "<checks>:2:", "scanning from here")
    assert "> " in msg  # the input line where scanning started is marked


def test_whitespace_runs_match_any_horizontal_whitespace_but_not_none():
    ok("// CHECK: %0   =  nn.relu")
    fails("// CHECK: nn. relu")


def test_several_matches_on_one_line_continue_after_the_previous_match():
    ok("// CHECK: nn.add\n// CHECK: %x")  # %x on the same line, after nn.add
    fails("// CHECK: nn.add %0\n// CHECK: %1 =")  # `%1 =` is before the match on its line


# -- CHECK-NEXT --------------------------------------------------------------------------


def test_next_on_the_following_line():
    ok("// CHECK: nn.relu\n// CHECK-NEXT: nn.add")


def test_next_rejects_a_later_line_and_says_where_it_was():
    fails("// CHECK: nn.relu\n// CHECK-NEXT: func.return", "not on the line after",
          "3 lines after")


def test_next_rejects_the_same_line():
    fails("// CHECK: %1 = nn.add\n// CHECK-NEXT: tensor<4xf32>",
          "not on the line after")


def test_next_without_a_previous_match_is_malformed():
    malformed("// CHECK-NEXT: nn.relu", "needs a previous match")


# -- CHECK-SAME --------------------------------------------------------------------------


def test_same_continues_the_line():
    ok("// CHECK: nn.add\n// CHECK-SAME: %0, %x\n// CHECK-SAME: -> tensor<4xf32>")


def test_same_rejects_text_on_another_line():
    fails("// CHECK: nn.relu\n// CHECK-SAME: nn.add", "on the line of the previous match")


def test_same_rejects_text_before_the_previous_match():
    fails("// CHECK: nn.relu\n// CHECK-SAME: %0 =")


# -- CHECK-EMPTY -------------------------------------------------------------------------


def test_empty_accepts_a_blank_line_and_rejects_text():
    ok("// CHECK: nn.add\n// CHECK-EMPTY:\n// CHECK-NEXT: func.return")
    fails("// CHECK: nn.relu\n// CHECK-EMPTY:", "next line is not empty")


# -- CHECK-NOT ---------------------------------------------------------------------------


def test_not_between_matches():
    ok("// CHECK: nn.relu\n// CHECK-NOT: nn.conv2d\n// CHECK: func.return")


def test_not_fails_when_the_excluded_text_is_between_the_matches():
    fails("// CHECK: nn.relu\n// CHECK-NOT: nn.add\n// CHECK: func.return",
          "excluded string found", "line 3")


def test_not_only_looks_between_its_neighbouring_matches():
    ok("// CHECK: nn.add\n// CHECK-NOT: nn.relu\n// CHECK: func.return")  # relu is before


def test_not_at_the_end_looks_to_the_end_of_its_block():
    fails("// CHECK: nn.relu\n// CHECK-NOT: nn.sigmoid", "excluded string found")
    ok("// CHECK-LABEL: @main\n// CHECK: nn.relu\n// CHECK-NOT: nn.sigmoid\n"
       "// CHECK-LABEL: @other")


def test_not_at_the_start_looks_from_the_start():
    fails("// CHECK-NOT: func.func\n// CHECK: nn.relu", "excluded string found")


# -- CHECK-LABEL -------------------------------------------------------------------------


def test_labels_split_the_input_into_blocks():
    ok("// CHECK-LABEL: @main\n// CHECK: nn.relu\n// CHECK-LABEL: @other\n// CHECK: nn.sigmoid")


def test_a_check_cannot_escape_its_label_block():
    fails("// CHECK-LABEL: @main\n// CHECK: nn.sigmoid\n// CHECK-LABEL: @other",
          "expected string not found")


def test_missing_label_fails():
    fails("// CHECK-LABEL: @absent", "expected string not found")


def test_next_after_a_label_is_relative_to_the_label_line():
    ok("// CHECK-LABEL: @other\n// CHECK-NEXT: nn.sigmoid")
    fails("// CHECK-LABEL: @main\n// CHECK-NEXT: nn.add", "not on the line after")


def test_labels_cannot_define_variables():
    malformed("// CHECK-LABEL: func.func @[[F:[a-z]+]]", "cannot define variables")


# -- CHECK-DAG ---------------------------------------------------------------------------


def test_dag_matches_in_any_order():
    ok("// CHECK-DAG: nn.add\n// CHECK-DAG: nn.relu\n// CHECK: func.return")


def test_dag_matches_do_not_overlap():
    ok("// CHECK-LABEL: @main\n// CHECK-DAG: tensor<4xf32>\n// CHECK-DAG: tensor<4xf32>")
    fails("// CHECK-LABEL: @other\n// CHECK-DAG: nn.sigmoid\n// CHECK-DAG: nn.sigmoid",
          "expected string not found")


# -- variables and regexes ---------------------------------------------------------------


def test_capture_and_use():
    ok("// CHECK: %[[R:.*]] = nn.relu\n// CHECK: nn.add %[[R]], %x")


def test_use_of_a_captured_value_must_match_the_captured_text():
    fails("// CHECK: %[[R:[0-9]+]] = nn.add\n// CHECK: nn.relu %[[R]]")
    fails("// CHECK-LABEL: @main\n// CHECK: %[[R:[0-9]+]] = nn.relu\n"
          "// CHECK: func.return %[[R]]\n// CHECK-LABEL: @other")  # @main returns %1


def test_capture_then_use_on_the_same_line_is_a_backreference():
    ok("// CHECK: nn.add %[[A:[0-9]+]], %x : (tensor<[[T:4xf32]]>, tensor<[[T]]>)")
    fails("// CHECK: nn.add %[[A:[a-z0-9]+]], %[[A]]")


def test_captures_are_redefined_by_later_definitions():
    ok("// CHECK: %[[V:[0-9]+]] = nn.relu\n// CHECK: %[[V:[0-9]+]] = nn.add\n"
       "// CHECK: func.return %[[V]]")


def test_inline_regex():
    ok("// CHECK: %{{[0-9]+}} = nn.{{relu|gelu}} %x")
    fails("// CHECK: %{{[a-z]+}} = nn.relu")


def test_regex_ending_in_a_brace():
    ok("// CHECK: tensor<{{[0-9]{1}}}xf32>")


def test_regex_metacharacters_in_literal_text_are_literal():
    ok("// CHECK: (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>")
    fails("// CHECK: nn.add %0. %x")  # '.' is not a wildcard outside {{ }}


def test_undefined_variable_is_malformed():
    malformed("// CHECK: nn.relu %[[NOPE]]", "undefined variable", "NOPE")


def test_bad_regex_is_malformed():
    malformed("// CHECK: {{[unclosed}}", "bad regex")


def test_variables_in_not_are_uses_only():
    ok("// CHECK: %[[R:[0-9]+]] = nn.relu\n// CHECK-NOT: nn.relu %[[R]]\n// CHECK: func.return")
    malformed("// CHECK-NOT: %[[R:[0-9]+]] = nn.conv2d", "cannot define variables")


# -- malformed directives ----------------------------------------------------------------


@pytest.mark.parametrize("line,fragment", [
    ("// CHECK-NXT: nn.relu", "unknown directive 'CHECK-NXT' (did you mean 'CHECK-NEXT:'?)"),
    ("// CHECK-COUNT-2: nn.relu", "unknown directive"),
    ("// CHECK_NEXT: nn.relu", "unknown directive"),
    ("// CHEK: nn.relu", "unknown directive 'CHEK'"),
    ("// CHECKNEXT: nn.relu", "unknown directive"),
    ("// CHECK-NEXT  %6", "missing its colon"),
    ("// CHECK nn.relu", "missing its colon"),
    ("//CHECK-LABEL @main", "missing its colon"),
    ("// CHECK:", "empty pattern"),
    ("// CHECK-EMPTY: x", "takes no pattern"),
    ("// CHECK: [[#N]]", "numeric variables"),
    ("// CHECK: {{x", "unterminated"),
])
def test_malformed_directive_is_an_error(line, fragment):
    malformed("// CHECK: nn.relu\n" + line, fragment)


def test_no_directives_is_an_error():
    malformed("// just a comment", "no 'CHECK' directives")


def test_prose_comments_are_not_directives():
    assert parse_directives("// This test CHECKs that relu fuses.\n// NOTE: x\n// TODO fix") == []


def test_custom_prefix():
    filecheck("// MYCHECK: nn.relu\n// MYCHECK-NEXT: nn.add", IR, prefix="MYCHECK")
    with pytest.raises(FileCheckError, match="unknown directive"):
        filecheck("// MYCHECK-NXT: nn.relu", IR, prefix="MYCHECK")


def test_directive_line_numbers_follow_first_line():
    (d,) = parse_directives("x\n// CHECK: y", first_line=10)
    assert d.line == 11 and d.kind == "CHECK" and d.pattern == "y"


# -- case splitting ----------------------------------------------------------------------


def test_split_cases_keeps_line_numbers():
    text = "a\nb\n// -----\nc\n\n   //   -----  \nd\n// -----\n"
    cases = split_cases(text)
    assert [c.text.strip() for c in cases] == ["a\nb", "c", "d"]
    assert [c.first_line for c in cases] == [1, 4, 7]
    for c in cases:
        first = c.text.strip().splitlines()[0]
        assert text.splitlines()[c.first_line - 1] == first


def test_split_cases_does_not_split_on_longer_rules():
    assert len(split_cases("a\n// ------- section\nb")) == 1


def test_double_brackets_that_are_not_variables_are_literal():
    filecheck("// CHECK: dense<[[1.0, 2.0], [3.0]]>", "%0 = nn.constant dense<[[1.0, 2.0], [3.0]]>")
    with pytest.raises(CheckFailure):
        filecheck("// CHECK: dense<[[1.0]]>", "%0 = nn.constant dense<[1.0]>")
