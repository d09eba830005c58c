"""`almoner devnet`: the local 4-validator network behind `make devnet`, and its node controls."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from almoner.cli.output import fail
from almoner.node.errors import AlmonerError

if TYPE_CHECKING:
    from almoner.node.devnet.network import Devnet

DIR_OPTION = click.option(
    "--dir",
    "root",
    default=Path("devnet"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)


@click.group(invoke_without_command=True)
@click.option(
    "--nodes", default=4, show_default=True, type=click.IntRange(1, 16), help="Validators."
)
@DIR_OPTION
@click.option(
    "--no-demo", is_flag=True, help="Skip the demo transactions (parties stay in genesis)."
)
@click.option("--base-port", default=7101, show_default=True, type=int, help="First node's port.")
@click.option("--init-only", is_flag=True, help="Write the directory and exit.")
@click.option(
    "--restart-exited",
    type=click.FloatRange(0),
    default=None,
    metavar="SECONDS",
    help="Restart a node that exited after this many seconds (default: leave it down "
    "until `almoner devnet node start`).",
)
@click.pass_context
def devnet(
    ctx: click.Context,
    nodes: int,
    root: Path,
    no_demo: bool,
    base_port: int,
    init_only: bool,
    restart_exited: float | None,
) -> None:
    """Run a local network of validator processes until Ctrl-C.

    A node that exits is reported and the others keep running; from another shell,
    `almoner devnet node stop|start|restart|kill N` acts on one node.
    """
    if ctx.invoked_subcommand is not None:
        return
    from almoner.node.devnet.network import create_devnet

    fresh = not (root / "genesis.json").exists()
    try:
        net = create_devnet(root, nodes=nodes, base_port=base_port)
    except (AlmonerError, OSError) as exc:
        fail(f"cannot prepare {root}: {exc}")
    click.echo(
        f"{'created' if fresh else 'resuming'} devnet in {root} "
        f"(chain {net.genesis.chain_id}, genesis {net.genesis.hash.hex()})"
    )
    if not init_only:
        _run(net, root, fresh and not no_demo, not no_demo, restart_exited)


def _run(net: Devnet, root: Path, demo: bool, show_demo: bool, restart_after: float | None) -> None:
    from almoner.node.devnet.demo import load_demo
    from almoner.node.devnet.network import NodeProcesses, Supervisor, supervisor_running

    if supervisor_running(root):
        fail(f"an `almoner devnet` is already running in {root}")
    procs = NodeProcesses(net)
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        with Supervisor(procs, say=click.echo, restart_after=restart_after) as sup:
            procs.start_all()
            procs.wait_healthy()
            for name, url in net.urls.items():
                click.echo(f"  {name}: {url}   (log: {net.home(name) / 'node.log'})")
            if demo:
                click.echo("loading the demo data set …")
                receipts = load_demo(net, next(iter(net.urls.values())))
                click.echo(
                    f"demo loaded: {len(receipts)} txs committed, head at height "
                    f"{receipts[-1]['head']['height']}"
                )
            explorer = next(iter(net.urls.values()))
            click.echo(f"explorer: {explorer}/   (API docs: {explorer}/docs)")
            if show_demo:
                platform = net.key("platform-1").public_key.hex()
                click.echo(f"track a demo donation: {explorer}/track/{platform}/GN-1002")
            click.echo(
                f"keys to sign with are in {root / 'keys'}; "
                f"`almoner devnet node stop|start|restart|kill N --dir {root}` acts on one "
                "node; Ctrl-C stops the network"
            )
            while not stop:
                sup.poll()
                time.sleep(0.3)
    except AlmonerError as exc:
        procs.stop_all()
        fail(str(exc))
    click.echo("stopping …")
    procs.stop_all()
    click.echo("stopped")


@devnet.command("node")
@click.argument("action", type=click.Choice(["stop", "start", "restart", "kill"]))
@click.argument("which", metavar="N")
@DIR_OPTION
def node_action(action: str, which: str, root: Path) -> None:
    """Stop, start, restart or kill (SIGKILL) node N (a number or a name like validator-2)
    of the devnet running in --dir; waits until the node is down or healthy again."""
    from almoner.node.devnet.network import node_name, request_action

    try:
        click.echo(request_action(root, action, node_name(root, which)))
    except (AlmonerError, OSError) as exc:
        fail(str(exc))
