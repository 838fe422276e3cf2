"""Per-pass cost deltas (irflow/pass_cost.py) and IR diffs between passes."""

import io

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.cli import load_inputs, main
from irflow.pass_cost import CostAfterEach
from irflow.pipeline import PassInstrumentation, run_pipeline


def test_cost_after_each_pass_matches_a_direct_simulation():
    m = zoo.load("lenet5")
    x = load_inputs(m, None, 0)
    before = simulate(m, x, machine="micro").report.total
    cost = CostAfterEach("micro", x)
    result = run_pipeline(m, "default", instruments=[cost])
    changed = [p.name for p in result.passes if p.modified]
    assert [r.pass_name for r in cost.rows] == ["(input)", *changed]
    after = simulate(m, x, machine="micro").report.total
    first, last = cost.rows[0], cost.rows[-1]
    assert (first.cycles, first.energy_pj) == (before.cycles, before.energy.total_pj)
    assert (last.cycles, last.dram_bytes) == (
        after.cycles, after.dram_bytes_read + after.dram_bytes_written)
    assert last.ops < first.ops  # fuse-activation folded the relus
    table = cost.table()
    assert "fuse-activation" in table and f"{last.cycles - cost.rows[-2].cycles:+,}" in table


def test_instrument_hooks_run_in_order():
    seen = []

    class Spy(PassInstrumentation):
        def before_pipeline(self, module):
            seen.append("before")

        def after_pass(self, record, module):
            seen.append((record.name, record.modified))

        def after_pipeline(self, result):
            seen.append("after")

    run_pipeline(zoo.load("lenet5"), "cse,fuse-activation", instruments=[Spy()])
    assert seen == ["before", ("cse", False), ("fuse-activation", True), "after"]


def test_cli_cost_after_each_and_ir_diff(capsys):
    assert main(["opt", "lenet5", "-p", "cse,fuse-activation", "--cost-after-each",
                 "--hw", "micro", "--print-ir-after-change", "--ir-diff"]) == 0
    err = capsys.readouterr().err
    assert "// -----// IR Diff After fuse-activation //----- //" in err
    assert "\n-    %3 = nn.relu %2" in err and "+++ after fuse-activation" in err
    assert "cse //" not in err  # cse changed nothing: no dump
    rows = [line.split() for line in err.splitlines() if line.startswith(("(input)", "fuse-"))]
    assert [r[0] for r in rows] == ["(input)", "fuse-activation"] and rows[1][2] == "-4"


def test_ir_diff_of_an_unchanged_module_says_so():
    from irflow.pipeline import ir_diff

    assert ir_diff("a\n", "a\n", "cse") == "(no change)"
    out = io.StringIO()
    run_pipeline(zoo.load("lenet5"), "cse", print_ir_after_all=True, ir_diff=True, out=out)
    assert "IR Diff After cse" in out.getvalue() and "(no change)" in out.getvalue()


def test_lowering_keeps_the_weight_bytes_and_the_cost():
    m = zoo.load("lenet5")
    cost = CostAfterEach("default")  # the machine the passes' defaults plan for
    run_pipeline(m, "default,tile,plan-memory,lower-to-accel", instruments=[cost])
    planned, lowered = cost.rows[-2], cost.rows[-1]
    assert lowered.pass_name == "lower-to-accel" and lowered.weight_bytes > 0
    assert (lowered.weight_bytes, lowered.cycles, lowered.energy_pj) == (
        planned.weight_bytes, planned.cycles, planned.energy_pj)
