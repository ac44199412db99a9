"""Render the harness's JSON results as the Markdown page docs/benchmarks.md.

`render_markdown` is a pure function of the results document, so the page is
always generated, never typed by hand, and can be re-rendered from a saved
JSON file (``python benchmarks/run.py --from results.json --markdown PATH``).
"""

from __future__ import annotations

from typing import Any

#: One line per case under its heading: what the case measures.
CASE_TITLES = {
    "blocking_transition_1thread": "one caller toggling a two-state machine with one enter hook",
    "blocking_transition_4threads": "four callers on one machine",
    "pipelined_transitions": "one caller keeping up to 1,000 replies in flight",
    "reads_under_write": "4 reader threads while one writer transitions (reads per second)",
    "modify_8threads": "8 threads incrementing one counter",
    "durable_transitions": "transitions per second by store mode, 1 and 32 callers, and one "
    "caller keeping 1,000 requests in flight over 32 machines",
    "spawn_machines": "creating many machines, every system side by side: rate, bytes per "
    "machine, threads and shutdown time (each system's count is in its notes)",
    "pending_timers": "many machines with a pending state timeout on the pooled host: threads, "
    "bytes per pending timer, and the time to fire them all",
    "fanout_transitions": "one sender, one pipelined transition on each of many machines, "
    "next to as many on one machine",
    "fairness": "one cell with a backlog and many cells with one message each: how much of "
    "the backlog goes before each of them (ordering, not time)",
    "restart_latency": "from a crash to the next message handled",
    "ray_blocking": "one caller, one blocking transition at a time through RayRuntime (1 shard), "
    "next to a raw Ray actor call doing the same transition and store write (SQLiteStore "
    "batched for both, on a local cluster the case starts)",
    "ray_pipelined": "one caller keeping 1,000 requests in flight over 1,000 machines on 2 "
    "shards, next to 2 raw Ray actors with one call per request (SQLiteStore batched for both)",
}


#: The end of the page: how ``run.py --against`` compares two versions, and
#: what it showed when a version was compared with itself. Prose, not results.
COMPARING = """## Comparing two versions

Two full runs of the same code on a shared machine differ by up to a third,
so a change of speed is only ever judged against a measurement taken next to
it, in the same run:

```bash
python benchmarks/run.py --against GIT_REF [--cases a,b] [--rounds N] [--max-slowdown 0.10]
```

measures stateward's own systems of each case (the peers are left out) in this
checkout and in `GIT_REF`:

- `GIT_REF` is written out with `git archive` into a temporary folder (under
  `--tmp-dir` if given), removed at the end, also after an error, Ctrl-C or
  SIGTERM.
- Each version runs in its own worker process (`benchmarks/_worker.py`). It
  imports stateward from its checkout, where that checkout's `pyproject.toml`
  maps the packages, and never from an installed or editable copy; it runs
  *this* checkout's case definitions, so both versions run the same cases.
  Every timing is taken inside the workers, which answer over a pipe:
  starting a process is no part of any measurement.
- Every round starts a fresh pair of workers, both at once, and warms them up
  with one untimed measurement of the case's first system (`--warmup`). Then,
  system by system, one worker measures and then the other; who goes first
  alternates from round to round.
- Each round gives one ratio: new's time per operation over old's, from the
  two measurements of that round (1.10 is 10% slower). A system's result is
  the median of its per-round ratios, with the 95% confidence interval of that
  median (two order statistics of the rounds: no assumption about the
  distribution) and the lowest and highest round.
- Two clocks: the wall clock, and the CPU time of the worker process (every
  thread). The verdict goes by CPU time, which other processes on the machine
  hardly move; the SQLite systems of `durable_transitions` wait on the disk,
  which CPU time does not see, so they go by the wall clock. `--judge-by wall`
  (on a quiet machine) or `--judge-by cpu` sets one clock for every system.
- A system runs at least 10 rounds and stops once its median is known within
  ±0.03 (95%), after 200 rounds, or when its case has run for 120 s.
  `--rounds N` fixes the number; `--cpus 1` pins both workers to CPU 1.
- The exit status is 1 when a system's median ratio is above
  1 + `--max-slowdown` (default 0.10) or the new version fails a case's
  checks; they are listed under `slower` and `failed` in the JSON (`--out`)
  and marked in the report (`--markdown`, also printed on stderr). A case or
  system that the old version cannot run (an API it does not have, checks it
  fails) is reported as skipped, not failed. A ref that names no commit exits
  with 2. Progress (round, case, system, both clocks) goes to stderr.
- `--quick` uses the quick sizes and each case's own rounds: it shows that the
  comparison works, not how fast anything is.

A case that needs a name only newer versions have imports it inside its case
function, so that against an older version only that case is skipped.

### The noise floor: a version against itself

Measured while writing this mode, on the 2-CPU development machine while other
test suites ran on it (load average 5 to 16), comparing main with itself
(`--against` the commit checked out) on `blocking_transition_1thread`,
`pipelined_transitions`, `reads_under_write`, `modify_8threads` and
`restart_latency`:

- The wall clock alone, one pair of workers, 15 rounds: per-round ratios from
  0.33 to 3.0, and the middle half of `pipelined_transitions`' rounds from
  0.82 to 1.69. The workers got 20% to 80% of a CPU, changing from one measurement
  to the next: a 10% verdict on that is a coin toss.
- CPU time per operation, same rounds: the middle half of the rounds within
  ±2% to ±8% of the median, medians between 0.99 and 1.04.
- One pair of workers for a whole case carried its own offset: in one run
  three of six intervals did not hold 1.00 (0.965 with an interval of 0.933 to
  0.990, 1.027 with 1.003 to 1.041), and pairs kept for 5 rounds still gave
  1.007 to 1.063 once. Where a process lands in memory changes its speed for
  its whole life; with a fresh pair every round that offset is part of the
  spread the interval shows, instead of a bias it hides. Pinning both workers
  to one CPU did not narrow the intervals.
- With the method above (3.5 minutes for the five cases while the load
  average fell from 7.4 to 2.7): every CPU median between 0.999 and 1.011,
  every 95% interval holding 1.00 and within 0.94 to 1.04, well inside the
  10% threshold. The wall clock of the same rounds gave medians from 0.99 to
  1.04, intervals up to 0.84 to 1.37 and single rounds from 0.18 to 2.8.
- Again at a quieter time (load average 1.6 to 3, 190 s): CPU medians from
  0.989 to 1.017, every interval within 0.97 to 1.05; one of the six (1.004 to
  1.044) did not hold 1.00, about as often as 95% intervals should miss.
"""


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _latency(value: float | None) -> str:
    if value is None:
        return "-"
    return _number(value, 1 if value < 100 else 0)


def _spread(entry: dict[str, Any]) -> str:
    spread = entry.get("spread")
    if not spread:
        return "-"
    low, high = spread.get("ops_per_s_min"), spread.get("ops_per_s_max")
    rounds = spread.get("rounds")
    text = f"{_number(low)} to {_number(high)} ops/s"
    if rounds:
        text += f" over {rounds} rounds"
    return text


def _cell(text: str) -> str:
    """Table cells cannot hold a pipe or a line break."""
    return text.replace("|", "\\|").replace("\n", " ")


def _case_table(systems: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| system | ops/s | median µs | spread | correct | notes |",
        "|---|---:|---:|---|:---:|---|",
    ]
    for name, entry in systems.items():
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{name}`",
                    _number(entry["ops_per_s"]),
                    _latency(entry["median_us"]),
                    _spread(entry),
                    "yes" if entry["correct"] else "**no**",
                    _cell(entry.get("notes", "")),
                ]
            )
            + " |"
        )
    return lines


def _targets_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| target | measured | status |",
        "|---|---:|:---:|",
    ]
    for target in targets:
        measured = target.get("measured")
        unit = target.get("unit", "")
        shown = "-" if measured is None else f"{_number(measured, 2)}{unit}"
        status = target.get("status", "met" if target.get("met") else "missed")
        if status == "missed":
            status = "**missed**"
        lines.append(f"| {_cell(target['target'])} | {shown} | {status} |")
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """The Markdown page for ``results`` (the harness's JSON document)."""
    if results.get("kind") == "comparison":
        return render_comparison(results)
    command = results.get("command", "python benchmarks/run.py")
    machine = [f"Python {results['python']}", f"{results['cpus']} CPUs"]
    if results.get("platform"):
        machine.append(results["platform"])
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by benchmarks/run.py from its JSON results; do not edit by hand. -->",
        "",
        "stateward next to transitions, python-statemachine, provide-foundation, automat",
        "and raw pykka. Every case runs every system in one process, interleaved round by round",
        "(round-robin), so the ratios compare like with like on a noisy machine. A system's",
        "ops/s is the median over the rounds, the spread is the lowest and highest round,",
        "and every ratio stateward/peer is the median of the per-round ratios.",
        "",
        "Produced by:",
        "",
        "```bash",
        "python -m pip install -e '.[bench]'",
        command,
        "```",
        "",
        f"- Machine: {', '.join(machine)}.",
    ]
    if results.get("mode"):
        duration = f", {results['seconds']:,.0f} s" if results.get("seconds") else ""
        lines.append(f"- Mode: {results['mode']}{duration}.")
    start, end = results.get("load_average_at_start"), results.get("load_average_at_end")
    if start and end:
        lines.append(
            f"- Load average (1, 5, 15 min) at the start: {', '.join(map(str, start))}; "
            f"at the end: {', '.join(map(str, end))}."
        )
    versions = results.get("versions")
    if versions:
        shown = ", ".join(f"{name} {version}" for name, version in versions.items())
        lines.append(f"- Versions: {shown}.")
    missing = results.get("missing")
    if missing:
        lines.append(f"- Not installed, so not measured: {', '.join(missing)}.")
    for case, why in results.get("unavailable", {}).items():
        lines.append(f"- `{case}` not measured: {why}.")
    for case, systems in results["cases"].items():
        lines += ["", f"## `{case}`", ""]
        title = CASE_TITLES.get(case)
        if title:
            lines += [title[0].upper() + title[1:] + ".", ""]
        info = results.get("case_info", {}).get(case)
        if info:
            load = info.get("load_average_at_start")
            text = f"Took {info['seconds']:,.1f} s"
            if load:
                text += f"; load average at its start: {', '.join(map(str, load))}"
            lines += [text + ".", ""]
        lines += _case_table(systems)
    targets = results.get("targets")
    if targets:
        lines += ["", "## Targets", ""]
        lines += _targets_table(targets)
    return "\n".join(lines) + "\n\n" + COMPARING


# -- run.py --against ----------------------------------------------------------------------

_VERDICTS = {"ok": "ok", "slower": "**slower**", "failed": "**failed**", "error": "**failed**"}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio_cells(judged: dict[str, Any] | None, verdict: bool) -> list[str]:
    """The median (bold when the verdict goes by it), its 95% interval and the range."""
    if not judged or "median" not in judged:
        return ["-", "-"]
    median = _ratio(judged["median"])
    low, high = judged["median_95"]
    spread = f"{_ratio(low)} to {_ratio(high)} ({_ratio(judged['min'])} to {_ratio(judged['max'])})"
    return [f"**{median}**" if verdict else median, spread]


def _comparison_row(case: str, system: str, entry: dict[str, Any]) -> str:
    new, old = entry.get("new") or {}, entry.get("old") or {}
    status = entry["status"]
    verdict = _VERDICTS.get(status, "**incorrect**" if status == "incorrect" else status)
    if entry.get("why"):
        verdict += ": " + entry["why"].strip().splitlines()[-1]
    rounds = entry.get("cpu", {}).get("rounds")
    cells = [
        f"`{case}`",
        f"`{system}`",
        "-" if rounds is None else str(len(rounds)),
        _number(new.get("ops_per_s")),
        _number(old.get("ops_per_s")),
        *_ratio_cells(entry.get("cpu"), entry.get("judged_by") == "cpu"),
        *_ratio_cells(entry.get("wall"), entry.get("judged_by") == "wall"),
        _cell(verdict),
    ]
    return "| " + " | ".join(cells) + " |"


def _rounds_text(results: dict[str, Any]) -> str:
    rounds = results.get("rounds")
    if isinstance(rounds, dict):
        return (
            f"at least {rounds['min']} rounds per system, until the median ratio is known "
            f"within ±{results['precision']:g} (95%), at most {rounds['max']} rounds or "
            f"{rounds.get('budget_s', 0):g} s"
        )
    if isinstance(rounds, int):
        return f"{rounds} rounds per system"
    return "each case's own rounds"


def render_comparison(results: dict[str, Any]) -> str:
    """The Markdown report of ``run.py --against`` (its JSON document)."""
    new, old = results["new"], results["old"]
    changes = " with uncommitted changes" if new.get("uncommitted_changes") else ""
    limit = results["max_slowdown"]
    lines = [
        f"# stateward against `{old['ref']}`",
        "",
        f"- New: this checkout, commit `{new['commit'][:12]}`{changes}.",
        f"- Old: `{old['ref']}`, commit `{old['commit'][:12]}`.",
        f"- Machine: Python {results['python']}, {results['cpus']} CPUs, {results['platform']}.",
        f"- Mode: {results['mode']}, {_rounds_text(results)}, after "
        f"{results.get('warmup', 0)} warm-up round(s); {results.get('seconds', 0):,.0f} s.",
    ]
    if results.get("cpus_pinned"):
        lines.append(f"- Both workers pinned to CPU(s) {results['cpus_pinned']}.")
    start, end = results.get("load_average_at_start"), results.get("load_average_at_end")
    if start and end:
        lines.append(
            f"- Load average (1, 5, 15 min) at the start: {', '.join(map(str, start))}; "
            f"at the end: {', '.join(map(str, end))}."
        )
    judged_by = results.get("judged_by")
    verdict_by = (
        f"goes by {judged_by} for every system"
        if judged_by
        else "goes by CPU time, except for the systems that wait on a disk (wall clock)"
    )
    lines += [
        "",
        "A ratio is new's time per operation over old's, from the two measurements of",
        "one round (1.100: 10% slower). Each measure shows the median ratio over the",
        "rounds, then the 95% confidence interval of that median and, in brackets, the",
        "lowest and highest round. CPU time is the worker process's (every thread).",
        f"The verdict {verdict_by}: its median is in bold.",
        "",
        "| case | system | rounds | new ops/s | old ops/s | CPU new/old | CPU 95% (range) "
        "| wall new/old | wall 95% (range) | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for case, result in results["cases"].items():
        if "systems" not in result:
            why = _cell(result.get("why", ""))
            dashes = " | ".join(["-"] * 8)
            lines.append(f"| `{case}` | {dashes} | {result['status']}: {why} |")
            continue
        for system, entry in result["systems"].items():
            lines.append(_comparison_row(case, system, entry))
    lines.append("")
    if results.get("passed"):
        lines.append(f"Passed: no system is more than {limit:.0%} slower.")
    else:
        lines.append(f"**Failed** (threshold {limit:.0%}).")
    for key, text in (("slower", "Slower"), ("failed", "Failed"), ("skipped", "Skipped")):
        if results.get(key):
            lines.append(f"{text}: {', '.join(results[key])}.")
    return "\n".join(lines) + "\n"
