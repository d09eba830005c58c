"""`almoner devnet`: the local 4-validator network behind `make devnet`."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import click

from almoner.cli.output import fail
from almoner.node.errors import AlmonerError


@click.command()
@click.option(
    "--nodes", default=4, show_default=True, type=click.IntRange(1, 16), help="Validators."
)
@click.option(
    "--dir",
    "root",
    default=Path("devnet"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--no-demo", is_flag=True, help="Skip the demo transactions (parties stay in genesis)."
)
@click.option("--base-port", default=7101, show_default=True, type=int, help="First node's port.")
@click.option("--init-only", is_flag=True, help="Write the directory and exit.")
def devnet(nodes: int, root: Path, no_demo: bool, base_port: int, init_only: bool) -> None:
    """Run a local network of validator processes until Ctrl-C."""
    from almoner.node.devnet.demo import load_demo
    from almoner.node.devnet.network import NodeProcesses, create_devnet

    fresh = not (root / "genesis.json").exists()
    try:
        net = create_devnet(root, nodes=nodes, base_port=base_port)
    except (AlmonerError, OSError) as exc:
        fail(f"cannot prepare {root}: {exc}")
    click.echo(
        f"{'created' if fresh else 'resuming'} devnet in {root} "
        f"(chain {net.genesis.chain_id}, genesis {net.genesis.hash.hex()})"
    )
    if init_only:
        return
    procs = NodeProcesses(net)
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        procs.start_all()
        procs.wait_healthy()
        for name, url in net.urls.items():
            click.echo(f"  {name}: {url}   (log: {net.home(name) / 'node.log'})")
        if fresh and not no_demo:
            click.echo("loading the demo data set …")
            receipts = load_demo(net, next(iter(net.urls.values())))
            click.echo(
                f"demo loaded: {len(receipts)} txs committed, head at height "
                f"{receipts[-1]['head']['height']}"
            )
        explorer = next(iter(net.urls.values()))
        click.echo(f"explorer: {explorer}/   (API docs: {explorer}/docs)")
        if not no_demo:
            platform = net.key("platform-1").public_key.hex()
            click.echo(f"track a demo donation: {explorer}/track/{platform}/GN-1002")
        click.echo(f"keys to sign with are in {root / 'keys'}; Ctrl-C stops the network")
        while not stop:
            for name, proc in procs.procs.items():
                if proc.poll() is not None:
                    raise AlmonerError(
                        f"{name} exited with status {proc.returncode}; see its node.log"
                    )
            time.sleep(0.5)
    except AlmonerError as exc:
        procs.stop_all()
        fail(str(exc))
    click.echo("stopping …")
    procs.stop_all()
    click.echo("stopped")
