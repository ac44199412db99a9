"""Render the harness's JSON results as the Markdown page docs/benchmarks.md.

`render_markdown` is a pure function of the results document, so the page is
always generated, never typed by hand, and can be re-rendered from a saved
JSON file (``python benchmarks/run.py --from results.json --markdown PATH``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: One line per case under its heading: what the case measures.
CASE_TITLES = {
    "blocking_transition_1thread": "one caller toggling a two-state machine with one enter hook",
    "blocking_transition_4threads": "four callers on one machine. A call whose move lost the "
    "race to another caller's (the machine already left its source state) is refused; ops/s "
    "counts the transitions that happened. stateward keeps the whole history here: a commit "
    "adds one entry and shares the rest with the snapshot before, so the kept length costs "
    "memory, not time. python-statemachine is not thread-safe: a call made while another "
    "thread is inside the machine is queued and returns None at once; that other thread runs "
    "it and gets its error (statemachine/engines/sync.py, processing_loop)",
    "pipelined_transitions": "one caller keeping up to 1,000 replies in flight",
    "reads_under_write": "4 reader threads while one writer transitions (reads per second). "
    "transitions' LockedMachine locks only machine methods and event triggers "
    "(transitions/extensions/locking.py, LockedMachine.__getattribute__ and "
    "LockedEvent.trigger), so a plain read of the model's attributes can land between a "
    "trigger setting the state and its enter hook running: a torn read",
    "modify_8threads": "8 threads incrementing one counter. provide-foundation's real API has "
    "no get_state(): the read is its current_state property; each call is locked, the "
    "read-then-write is not",
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
COMPARING = (Path(__file__).resolve().parent / "comparing.md").read_text()


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


def _range(entry: dict[str, Any]) -> str:
    """The lowest and highest round's ops/s, short enough for a narrow column."""
    spread = entry.get("spread")
    if not spread or spread.get("ops_per_s_min") is None:
        return "-"
    return f"{_number(spread['ops_per_s_min'])}\N{EN DASH}{_number(spread['ops_per_s_max'])}"


def _cell(text: str) -> str:
    """Table cells cannot hold a pipe or a line break."""
    return text.replace("|", "\\|").replace("\n", " ")


#: The columns of every case's table: few and narrow, so that a table fits a
#: ~720 px text column; what each system is and what it checked go under it.
CASE_HEADER = "| system | ops/s | median µs | range of ops/s | correct |"

#: How the tables read, said once instead of in every case.
HOW_TO_READ = """## How to read the tables

- Every case runs every system in one process, interleaved round by round
  (round-robin), so that a noisy machine slows them all alike.
- **ops/s** is the median over the rounds; **range of ops/s** is the lowest and
  highest round. **median µs** is the median time of one operation where one
  is timed alone (`-` where many requests are in flight at once).
- **correct**: the case's checks held in every round (`**no**` with what went
  wrong in the system's notes). A peer that is not thread-safe is measured as
  it is and marked, not left out.
- Under each table, the notes say what each system is, what was checked, and
  what was counted over all rounds. What holds for every system of a case is
  said once, first. A note that repeats for each round is shown once, with how
  many more rounds said the same.
- A ratio stateward/peer (the targets) is the median of the per-round ratios,
  so the rounds that both systems shared are compared with each other."""


def _clauses(notes: str) -> list[str]:
    """A system's notes, split where the harness joined them ("; ")."""
    return [clause.strip() for clause in notes.split("; ") if clause.strip()]


def _alike(clauses: list[str]) -> list[str]:
    """Clauses that differ only in their numbers (one per round) shown once,
    with how many more there were."""
    shape: dict[str, list[str]] = {}
    for clause in clauses:
        shape.setdefault(re.sub(r"[-+]?\d[\d,.]*", "#", clause), []).append(clause)
    shown = []
    for same in shape.values():
        more = len(same) - 1
        shown.append(same[0] + (f" (and {more} more like it)" if more else ""))
    return shown


def _notes(systems: dict[str, dict[str, Any]]) -> list[str]:
    """The notes under a case's table: what every system shares, then one
    short item per system."""
    clauses = {name: _clauses(entry.get("notes", "")) for name, entry in systems.items()}
    shared: list[str] = []
    if len(systems) > 1:
        first, *others = clauses.values()
        shared = [c for c in first if all(c in other for other in others)]
    lines = []
    if shared:
        lines += ["Every system: " + "; ".join(shared) + ".", ""]
    for name, own in clauses.items():
        kept = _alike([c for c in own if c not in shared])
        if kept:
            lines.append(f"- `{name}`: " + "; ".join(kept).replace("\n", " "))
    return lines


def _case_table(systems: dict[str, dict[str, Any]]) -> list[str]:
    lines = [CASE_HEADER, "|---|---:|---:|---:|:---:|"]
    for name, entry in systems.items():
        cells = [
            f"`{name}`",
            _number(entry["ops_per_s"]),
            _latency(entry["median_us"]),
            _range(entry),
            "yes" if entry["correct"] else "**no**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
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
        lines.append(f"| {_cell(target['target'])} | {shown} | {_status(target)} |")
    return lines


def _status(target: dict[str, Any]) -> str:
    status = str(target.get("status", "met" if target.get("met") else "missed"))
    return "**missed**" if status == "missed" else status


def _stateward(systems: dict[str, dict[str, Any]]) -> str:
    """stateward's rate in a case: the system named so, else the first, named."""
    if "stateward" in systems:
        return _number(systems["stateward"]["ops_per_s"])
    name, entry = next(iter(systems.items()))
    return f"{_number(entry['ops_per_s'])} ({name})"


def _verdicts(results: dict[str, Any]) -> list[str]:
    """One row per case: stateward's rate, its targets, the systems not correct."""
    targets = results.get("targets") or []
    lines = [
        "| case | stateward ops/s | targets met | not correct |",
        "|---|---:|:---:|---|",
    ]
    for case, systems in results["cases"].items():
        own = [t for t in targets if t.get("case") == case]
        met = sum(1 for t in own if _status(t) == "met")
        missed = sum(1 for t in own if _status(t) == "**missed**")
        verdict = "-" if not own else f"{met} of {len(own)}"
        if missed:
            verdict = f"**{verdict}**"
        wrong = ", ".join(f"`{name}`" for name, e in systems.items() if not e["correct"])
        lines.append(
            f"| [`{case}`](#{case.lower()}) | {_stateward(systems)} | {verdict} | {wrong or '-'} |"
        )
    return lines


def _summary(results: dict[str, Any]) -> list[str]:
    targets = results.get("targets") or []
    met = sum(1 for t in targets if _status(t) == "met")
    lines = ["## Summary", ""]
    if targets:
        lines += [f"{met} of {len(targets)} targets met.", ""]
    lines += _verdicts(results)
    for case, why in results.get("unavailable", {}).items():
        lines.append("")
        lines.append(f"- `{case}` not measured: {why}.")
    if targets:
        lines += ["", "### Targets", ""]
        lines += _targets_table(targets)
    return lines


#: The longest line of a command in a code block (a longer one scrolls sideways).
COMMAND_WIDTH = 76


def _wrapped(command: str) -> str:
    """A shell command cut into lines of at most `COMMAND_WIDTH` characters,
    with each option kept with its value and continued with a backslash."""
    words: list[str] = []
    for word in command.split():
        if words and not word.startswith("-") and words[-1].startswith("-"):
            words[-1] += " " + word  # an option and its value stay together
        else:
            words.append(word)
    lines = [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) + 2 > COMMAND_WIDTH:
            lines.append("   ")
        lines[-1] += (" " if lines[-1] else "") + word
    return " \\\n".join(lines)


def _the_run(results: dict[str, Any]) -> list[str]:
    command = results.get("command", "python benchmarks/run.py")
    machine = [f"Python {results['python']}", f"{results['cpus']} CPUs"]
    if results.get("platform"):
        machine.append(results["platform"])
    lines = [
        "## The run",
        "",
        "Produced by:",
        "",
        "```bash",
        "python -m pip install -e '.[bench]'",
        _wrapped(command),
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
    return lines


def _case(case: str, systems: dict[str, dict[str, Any]], results: dict[str, Any]) -> list[str]:
    lines = ["", f"## `{case}`", ""]
    title = CASE_TITLES.get(case)
    if title:
        lines += [title[0].upper() + title[1:] + ".", ""]
    info = results.get("case_info", {}).get(case)
    if info:
        rounds = {e.get("spread", {}).get("rounds") for e in systems.values()} - {None}
        text = f"Took {info['seconds']:,.1f} s"
        if len(rounds) == 1:
            text += f", {rounds.pop()} rounds"
        load = info.get("load_average_at_start")
        if load:
            text += f"; load average at its start: {', '.join(map(str, load))}"
        lines += [text + ".", ""]
    lines += _case_table(systems)
    notes = _notes(systems)
    if notes:
        lines += ["", *notes]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """The Markdown page for ``results`` (the harness's JSON document): the
    summary (each case's verdict and the targets) first, then how to read the
    tables, how the run was made, and each case."""
    if results.get("kind") == "comparison":
        return render_comparison(results)
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by benchmarks/run.py from its JSON results; do not edit by hand. -->",
        "",
        "stateward next to transitions, python-statemachine, provide-foundation,",
        "automat and raw pykka, case by case: the verdict first, then each case's",
        "measurements.",
        "",
        *_summary(results),
        "",
        HOW_TO_READ,
        "",
        *_the_run(results),
    ]
    for case, systems in results["cases"].items():
        lines += _case(case, systems, results)
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
