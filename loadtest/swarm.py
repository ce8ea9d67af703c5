"""The simulated players as a whole: worker processes, each with its share of the players on one asyncio loop."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

from loadtest.sim_player import PlayerOptions
from loadtest.tally import Tally, latest, total
from loadtest.worker import run_worker


class SwarmFailed(RuntimeError):
    """A worker process died or did not answer."""


@dataclass
class SwarmResults:
    sent: list[str]
    rejected: list[str]
    backlog: list[str]


class Swarm:
    def __init__(self, accounts: list[tuple[str, str]], public_keys: list[str], options: PlayerOptions, *,
                 processes: int, connect_spread_s: float, seed: int = 2024) -> None:
        context = multiprocessing.get_context("spawn")
        self.size = len(accounts)
        self.tallies: list[Tally] = []
        self.links = []
        self.processes = []
        count = max(1, min(processes, len(accounts)))
        for index in range(count):
            share = accounts[index::count]
            tally = Tally.shared(context)
            ours, theirs = context.Pipe()
            process = context.Process(target=run_worker, name=f"loadtest-players-{index}", daemon=True,
                                      args=(theirs, share, public_keys, options, tally.array, seed + index,
                                            connect_spread_s))
            self.tallies.append(tally)
            self.links.append(ours)
            self.processes.append(process)

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def total(self, name: str) -> int:
        return total(self.tallies, name)

    def latest(self, name: str) -> float:
        return latest(self.tallies, name)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def order(self, *order, timeout: float) -> list[tuple]:
        """Send the order to every worker and return their replies."""
        for link in self.links:
            link.send(order)
        return [self._reply(index, link, timeout) for index, link in enumerate(self.links)]

    def _reply(self, index: int, link, timeout: float) -> tuple:
        if not link.poll(timeout):
            raise SwarmFailed(f"worker {index} did not answer within {timeout:.0f} s")
        try:
            return link.recv()
        except EOFError:
            raise SwarmFailed(f"worker {index} ended (exit code {self.processes[index].exitcode})") from None

    def send_pop(self, seconds: float, batch: int, window: int) -> None:
        self.order("send", seconds, batch, window, timeout=30)

    def drain(self, timeout: float) -> int:
        return sum(reply[1] for reply in self.order("drain", timeout, timeout=timeout + 30))

    def results(self) -> SwarmResults:
        replies = [reply[1] for reply in self.order("results", timeout=120)]
        return SwarmResults(sent=[p for r in replies for p in r["sent"]],
                            rejected=[p for r in replies for p in r["rejected"]],
                            backlog=[p for r in replies for p in r["backlog"]])

    def stop(self, timeout: float = 30) -> None:
        for index, (link, process) in enumerate(zip(self.links, self.processes, strict=True)):
            if process.is_alive():
                try:
                    link.send(("stop",))
                    self._reply(index, link, timeout)
                except (SwarmFailed, BrokenPipeError, OSError):
                    pass
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(timeout)
