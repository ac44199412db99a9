"""The stateward command: inspect, graph, help and usage errors for every command
(the demo itself is in test_demo.py)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stateward.actors import ConfigManager, Runtime, SQLiteStore, StateMachine, StateManager
from stateward.actors.cli import _main, main
from stateward.core import ImmutableState, MachineCodec


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(list(argv), out=out, err=err)
    except SystemExit as exit_:  # argparse's own usage errors and --help
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def filled_store(tmp_path: Path) -> Path:
    path = tmp_path / "filled.db"
    code, _, _ = run(
        "demo", "--machines", "3", "--clients", "1", "--seconds", "0.3", "--store", str(path)
    )
    assert code == 0
    with Runtime("fill", store=SQLiteStore(path)) as runtime:
        ConfigManager({"level": "INFO"}, name="settings", runtime=runtime).update_config(
            {"level": "DEBUG"}, {"by": "ops"}
        )
        StateManager({"a": 1, "b": 2}, name="counters", runtime=runtime)
    return path


def test_inspect_lists_every_actor(filled_store: Path) -> None:
    code, out, _ = run("inspect", str(filled_store))
    assert code == 0
    assert out.splitlines()[0] == f"6 actors in {filled_store}"
    assert out.splitlines()[1].split() == ["NAME", "KIND", "VERSION", "CURRENT", "LAST", "CHANGE"]
    assert "counters    manager" in out and "keys a, b" in out
    assert "settings    config" in out
    code, out, _ = run("inspect", str(filled_store), "--json")
    listed = {a["name"]: a for a in json.loads(out)["actors"]}
    assert listed["settings"]["version"] == 1 and listed["counters"]["kind"] == "manager"
    assert listed["order-0000"]["summary"] == f"state {listed['order-0000']['state']!r}"
    assert listed["counters"]["keys"] == ["a", "b"] and listed["settings"]["keys"] == ["level"]
    assert "current" not in listed["counters"]


def test_inspect_history(filled_store: Path) -> None:
    code, out, _ = run("inspect", str(filled_store), "--history", "settings")
    assert code == 0
    assert "config 'settings', version 1" in out
    assert "v1: changes={'level': 'DEBUG'}" in out and "metadata={'by': 'ops'}" in out
    code, out, _ = run("inspect", str(filled_store), "--history", "order-0001", "--json")
    history = json.loads(out)["history"]
    assert history and all({"from", "to", "version"} <= set(h) for h in history)


def test_inspect_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    code, _, err = run("inspect", str(notes))
    assert code == 1 and "it is not a SQLite database" in err
    # Advice for the command's user, not for a program that builds a SQLiteStore.
    assert "give the path of a store that stateward wrote" in err and "SQLiteStore" not in err
    code, _, err = run("inspect", str(tmp_path / "missing.db"))
    assert code == 1 and "there is no such store" in err
    assert not (tmp_path / "missing.db").exists()


def test_an_unknown_history_name_exits_1_as_a_missing_store_does(filled_store: Path) -> None:
    code, _, err = run("inspect", str(filled_store), "--history", "nope")
    assert code == 1 and "usage:" not in err
    assert "no actor named 'nope'" in err and "(6 actors: counters," in err
    assert "and" not in err.split("actors:")[1].split(")")[0]  # all 6 listed


def test_an_unknown_history_name_lists_ten_actors_and_says_how_many_more(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    with Runtime("fill", store=SQLiteStore(path)) as runtime:
        for i in range(13):
            StateManager({"i": i}, name=f"m{i:02}", runtime=runtime)
    code, _, err = run("inspect", str(path), "--history", "nope")
    assert code == 1
    assert "(13 actors: m00, m01, m02, m03, m04, m05, m06, m07, m08, m09, ... and 3 more)" in err


def test_inspect_says_one_actor_not_one_actors(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    with Runtime("fill", store=SQLiteStore(path)) as runtime:
        StateManager({"a": 1}, name="only", runtime=runtime)
    code, out, _ = run("inspect", str(path))
    assert code == 0 and out.splitlines()[0] == f"1 actor in {path}"


def test_inspect_history_says_when_older_entries_were_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "short.db"
    # A snapshot at every commit: the store keeps what the machine keeps, its last 3.
    with Runtime("fill", store=SQLiteStore(path, snapshot_every=1)) as runtime:
        machine = StateMachine(
            "a", {"a": ["b"], "b": ["a"]}, name="flip", history_limit=3, runtime=runtime
        )
        for target in "babab":
            machine.transition(target)
    code, out, _ = run("inspect", str(path), "--history", "flip")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "machine 'flip', version 5, state 'b'"
    assert lines[1] == (
        "  (v1 to v2 not kept: the machine keeps only its latest entries, as many as its "
        "history_limit)"
    )
    assert [line.split(":")[0] for line in lines[2:]] == ["  v3", "  v4", "  v5"]
    code, out, _ = run("inspect", str(path), "--history", "flip", "--json")
    document = json.loads(out)
    assert document["oldest_kept"] == 3 and document["version"] == 5
    assert [h["version"] for h in document["history"]] == [3, 4, 5]


GETTING_STARTED = Path(__file__).resolve().parent.parent / "docs" / "getting-started.md"


def documented_graph() -> tuple[str, str]:
    """The getting-started page's ``stateward graph`` section: its ``flows.py``
    and the output it shows for ``stateward graph flows:orders``."""
    section = GETTING_STARTED.read_text().split("## `stateward graph`\n")[1].split("\n## ")[0]
    module = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    (shown,) = re.findall(
        r"```text\n\$ stateward graph flows:orders\n(.*?)```", section, flags=re.DOTALL
    )
    # test_docs.py runs the block and checks its "# -> " line; imported, it prints nothing.
    return module, shown


#: The page's flows.py (one definition of the scenario), plus a name that is no machine.
FLOWS = documented_graph()[0] + "not_a_machine = 42\n"


@pytest.fixture
def flows_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flows", raising=False)  # imported afresh, forgotten after


@pytest.mark.usefixtures("flows_module")
def test_graph_prints_what_the_getting_started_page_shows() -> None:
    code, out, err = run("graph", "flows:orders")
    assert (code, err) == (0, "")
    assert out == documented_graph()[1]


@pytest.mark.usefixtures("flows_module")
def test_graph_mermaid_and_dot() -> None:
    code, out, _ = run("graph", "flows:orders")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> pending" in lines
    assert "    pending --> paid : pay" in lines
    assert "    paid --> cancelled : cancel" in lines
    assert "    shipped --> [*]" in lines and "    cancelled --> [*]" in lines
    code, out, _ = run("graph", "flows:orders", "--format", "dot")
    assert out.startswith('digraph "orders" {')
    assert '"__start__" -> "pending";' in out
    assert '"shipped" [shape=doublecircle];' in out
    assert '"pending" -> "paid" [label="pay"];' in out


@pytest.mark.usefixtures("flows_module")
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("flows", "expected MODULE:ATTR"),
        ("no_such_module:x", "cannot import module 'no_such_module'"),
        ("flows:missing", "has no attribute 'missing'"),
        ("flows:not_a_machine", "is a int, not a machine definition"),
    ],
)
def test_graph_bad_targets_are_usage_errors(target: str, message: str) -> None:
    code, _, err = run("graph", target)
    assert code == 2
    assert message in err and "usage: stateward graph" in err


@pytest.mark.parametrize("command", ["demo", "inspect", "graph"])
def test_every_command_has_complete_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(command, "--help")  # argparse prints help to sys.stdout
    out = capsys.readouterr().out
    assert code == 0
    assert f"usage: stateward {command}" in out
    for action in _main._SUBPARSERS[command]._actions:
        for option in action.option_strings:
            assert option in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["demo", "--machines", "0"],
        ["demo", "--crash-rate", "1.5"],
        ["demo", "--seconds", "-1"],
        ["inspect"],
        ["graph", "x:y", "--format", "png"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    code, _, _ = run(*argv)
    assert code == 2


def test_the_console_script_and_module_entry_points() -> None:
    # The script pip installed next to this interpreter, not whichever one PATH finds.
    script = Path(sys.executable).with_name("stateward")
    assert script.is_file(), f"no console script at {script}: pip install -e ."
    helps = []
    for command in (
        [str(script)],
        [sys.executable, "-m", "stateward.actors.cli"],
        [sys.executable, "-m", "stateward.actors"],
    ):
        result = subprocess.run(
            [*command, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: stateward ")
        assert "demo" in result.stdout and "inspect" in result.stdout
        helps.append(result.stdout)
    assert helps[0] == helps[1] == helps[2]  # one program


def _shape(text: str) -> list[str]:
    """Lines with timestamps made generic and runs of spaces collapsed."""
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "TIME", text)
    return [" ".join(line.split()) for line in text.strip().splitlines()]


def test_the_getting_started_inspect_samples_are_what_inspect_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's "first durable store" block, run, then inspected as the page
    shows: the same lines, timestamps aside."""
    page = GETTING_STARTED.read_text()
    section = page.split("## Your first durable store\n")[1].split("\n## ")[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    block = block.replace('Path(tempfile.mkdtemp()) / "shop.db"', repr(str(tmp_path / "shop.db")))
    exec(compile(block, "getting-started.md", "exec"), {})  # the page's own code
    monkeypatch.chdir(tmp_path)
    inspect = page.split("## `stateward inspect`\n")[1].split("\n## ")[0]
    samples = re.findall(r"```text\n\$ stateward (.*?)\n(.*?)```", inspect, flags=re.DOTALL)
    assert len(samples) == 2
    for command, shown in samples:
        code, out, err = run(*command.split())
        assert (code, err) == (0, "")
        assert _shape(out) == _shape(shown), command


def test_graph_draws_a_chart_class_with_its_branch_guards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `StateChart` class names its definition too (``Chart.spec``); the
    example port of transitions' superhero, drawn from the project folder."""
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "examples.from_transitions", raising=False)
    code, out, err = run("graph", "examples.from_transitions:NarcolepticSuperhero")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert '    state "hanging out" as hanging_out' in lines
    assert "    sweaty --> asleep : clean_up [is_exhausted], nap" in lines
    assert "    sweaty --> hanging_out : clean_up [else]" in lines
    code, out, _ = run("graph", "examples.from_transitions:NarcolepticSuperhero", "--format", "dot")
    assert out.startswith('digraph "NarcolepticSuperhero" {')
    assert '    "sweaty" -> "hanging out" [label="clean_up [else]"];' in out.splitlines()


def test_graph_draws_a_chart_with_nested_and_parallel_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The port of python-statemachine's parallel chart: its parallel state a
    composite with two regions, each a composite with its initial child."""
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "examples.from_python_statemachine_parallel", raising=False)
    target = "examples.from_python_statemachine_parallel:WarOfTheRing"
    code, out, err = run("graph", target)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    at = lines.index("    state war {")
    assert lines[at + 1 : at + 4] == [
        "        state quest {",
        "            [*] --> shire",
        ("            shire --> mordor : journey"),
    ]
    assert "        --" in lines[at:]
    assert "    war --> peace : done.state.war" in lines
    assert out.count("{") == out.count("}") == 3
    code, out, _ = run("graph", target, "--format", "dot")
    assert '    subgraph "cluster_war" {' in out.splitlines()
    assert '        subgraph "cluster_battle" {' in out.splitlines()
    assert out.count("{") == out.count("}")


def statechart_store(path: Path) -> Path:
    """A store with a compound machine (with a history state) and a parallel one."""
    from stateward.actors import Runtime, SQLiteStore, StateMachine
    from stateward.core import MachineSpec

    player = MachineSpec(
        "off",
        events={
            "power": "off -> on",
            "play": "idle -> busy",
            "shut": "on -> off",
            "back": "off -> on_h",
        },
        compound={"on": ["idle", "busy"]},
        history={"on_h": "on"},
        name="player",
    )
    media = MachineSpec(
        "running",
        events={"next": ["a1 -> a2", "v1 -> v2"]},
        compound={"audio": ["a1", "a2"], "video": ["v1", "v2"]},
        parallel={"running": ["audio", "video"]},
        name="media",
    )
    store = SQLiteStore(path)
    with Runtime("charts", store=store, default_timeout=10.0) as rt:
        machine = StateMachine(player, name="player", runtime=rt)
        machine.trigger("power")
        machine.trigger("play")
        StateMachine(media, name="media", runtime=rt).trigger("next")
    store.close()
    return path


def test_inspect_shows_a_statecharts_configuration_and_its_history(tmp_path: Path) -> None:
    """The stored definition of a statechart records its tree, so inspect
    rebuilds the machine (before, it rebuilt a flat one and failed) and shows
    every active state, now and in each history record."""
    path = statechart_store(tmp_path / "charts.db")
    code, out, err = run("inspect", str(path))
    assert (code, err) == (0, "")
    assert "state 'busy' (active: busy, on)" in out
    assert "state 'running' (active: a2, audio, running, v2, video)" in out
    code, out, _ = run("inspect", str(path), "--json")
    actors = {a["name"]: a for a in json.loads(out)["actors"]}
    assert actors["player"]["configuration"] == ["busy", "on"]
    assert actors["media"]["state"] == "running"
    code, out, err = run("inspect", str(path), "--history", "media")
    assert (code, err) == (0, "")
    assert (
        "configuration_before=['a1', 'audio', 'running', 'v1', 'video'], "
        "configuration_after=['a2', 'audio', 'running', 'v2', 'video']"
    ) in out
    code, out, _ = run("inspect", str(path), "--history", "player", "--json")
    first = json.loads(out)["history"][0]
    assert (first["from"], first["to"]) == ("off", "idle")
    assert (first["configuration_before"], first["configuration_after"]) == (
        ["off"],
        ["idle", "on"],
    )


def _definition_without_tree(self: MachineCodec) -> ImmutableState:
    """`MachineCodec.definition` as stores recorded it before a statechart's tree
    was written: states and moves only."""
    spec = self.spec
    return ImmutableState(
        initial=spec.initial,
        states=list(spec.states),
        transitions={s: list(t) for s, t in spec.transitions.items()},
    )


def test_inspect_of_a_flat_machine_shows_no_configuration(filled_store: Path) -> None:
    code, out, _ = run("inspect", str(filled_store), "--json")
    assert code == 0
    assert all("configuration" not in a for a in json.loads(out)["actors"])
    code, out, _ = run("inspect", str(filled_store), "--history", "order-0001", "--json")
    assert all("configuration_before" not in r for r in json.loads(out)["history"])


def test_inspect_of_a_statechart_stored_without_its_tree_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statechart whose stored definition lacks its tree (as stores recorded
    it before the tree was written) is a clear error, not a crash."""
    with monkeypatch.context() as patch:
        patch.setattr(MachineCodec, "definition", _definition_without_tree)
        path = statechart_store(tmp_path / "old.db")
    for name, problem in [
        ("player", "names unknown target state 'on_h'"),  # its history state
        ("media", "it was stored by a statechart"),
    ]:
        code, _, err = run("inspect", str(path), "--history", name)
        assert code != 0
        assert f"cannot read machine {name!r}" in err and problem in err
        assert "open it with its spec in Python" in err
    code, _, err = run("inspect", str(path))
    assert code == 1 and "cannot read machine 'media'" in err


def test_inspect_lists_the_other_actors_and_marks_a_statechart_stored_without_its_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stateward.actors import Runtime, SQLiteStore, StateManager

    with monkeypatch.context() as patch:
        patch.setattr(MachineCodec, "definition", _definition_without_tree)
        path = statechart_store(tmp_path / "old.db")
    with Runtime("later", store=SQLiteStore(path)) as rt:
        StateManager({"count": 1}, name="visits", runtime=rt)

    code, out, err = run("inspect", str(path))
    assert code == 1  # something could not be read: the cli's exit code for that
    assert out.splitlines()[0] == f"3 actors in {path}"
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert sorted(rows) == ["media", "player", "visits"]
    assert "keys count" in rows["visits"]
    assert "unreadable (see the error below)" in rows["media"]
    assert "unreadable (see the error below)" in rows["player"]
    problems = err.splitlines()
    assert [p.split("'")[1] for p in problems] == ["media", "player"]
    assert all("open it with its spec in Python" in p for p in problems)

    code, out, err = run("inspect", str(path), "--json")
    assert code == 1 and "cannot read machine 'media'" in err
    actors = {a["name"]: a for a in json.loads(out)["actors"]}
    assert actors["visits"]["keys"] == ["count"]
    assert "cannot read machine 'player'" in actors["player"]["unreadable"]
