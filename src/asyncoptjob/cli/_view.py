"""How a run looks: the live view, plain progress lines and the final summary (rich)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._board import ERROR, PENDING, Board, Transition

__all__ = ["final_lines", "live_view", "progress_line", "summary", "transition_line"]

STYLES = {
    PENDING: "dim",
    "STARTING": "blue",
    "INPROGRESS": "cyan",
    "STOPPING": "yellow",
    "COMPLETED": "green",
    "FAILED": "bold red",
    "STOPPED": "yellow",
    ERROR: "bold magenta",
}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:,.1f}/s"


def _counts_text(board: Board, *, hide_zero: bool) -> Text:
    text = Text()
    for state, count in board.counts().items():
        if hide_zero and not count:
            continue
        if text:
            text.append("  ")
        text.append(state, style=STYLES.get(state, ""))
        text.append(f" {count}")
    return text


def _requests_text(board: Board) -> Text:
    stats = board.stats
    if stats is None:
        return Text("requests: none yet", style="dim")
    text = Text()
    text.append(f"requests {stats.total_requests:,}", style="bold")
    text.append(f"  {board.request_rate:,.1f} req/s")
    throttled = stats.requests.get("throttled", 0)
    text.append("  throttled ")
    text.append(f"{throttled:,}", style="bold yellow" if throttled else "")
    text.append(f"  transient {stats.requests.get('transient', 0):,}")
    text.append(f"  retries {stats.retries:,}")
    text.append(f"  rate limit {_rate(stats.rate_limit)}")
    text.append(f"  in flight {stats.in_flight}")
    text.append(f"  strategy {stats.strategy}")
    if stats.list_requests:
        text.append(f" ({stats.sweeps:,} sweeps, {sum(stats.list_requests.values()):,} list calls)")
    return text


def transition_line(transition: Transition) -> Text:
    """One transition, e.g. ``12:00:01 job-a INPROGRESS -> COMPLETED``, kept to one line."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(transition.at.astimezone().strftime("%H:%M:%S "), style="dim")
    text.append(transition.job_name, style="bold")
    text.append(" ")
    if transition.previous is not None and transition.previous != PENDING:
        text.append(transition.previous, style=STYLES.get(transition.previous, ""))
        text.append(" -> ")
    text.append(transition.status, style=STYLES.get(transition.status, ""))
    if transition.detail:
        text.append(f"  {transition.detail}", style="dim")
    return text


def live_view(board: Board, *, title: str, notes: Sequence[str] = ()) -> RenderableType:
    """The live view: progress bar, jobs per status, request rate and throttles, transitions."""
    head = Table.grid(padding=(0, 1), expand=False)
    head.add_column()
    head.add_column(no_wrap=True)
    head.add_row(
        ProgressBar(total=max(board.total, 1), completed=board.finished, width=40),
        Text(f"{board.finished}/{board.total} finished  {_clock(board.elapsed)}", style="bold"),
    )
    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    parts += [
        head,
        _counts_text(board, hide_zero=False),
        _requests_text(board),
    ]
    parts.extend(Text(note, style="bold yellow") for note in notes)
    if board.recent:
        parts.append(Text("recent transitions", style="dim underline"))
        parts.extend(transition_line(t) for t in reversed(board.recent))
    return Group(*parts)


def progress_line(board: Board, notes: Sequence[str] = ()) -> str:
    """One plain line of progress for non-terminal output."""
    stats = board.stats
    throttled = stats.requests.get("throttled", 0) if stats else 0
    limit = _rate(stats.rate_limit) if stats else "none"
    strategy = f", {stats.strategy}" if stats else ""
    line = (
        f"[{board.elapsed:6.1f}s] {board.finished}/{board.total} finished | "
        f"{_counts_text(board, hide_zero=True).plain} | "
        f"{board.request_rate:,.1f} req/s, {throttled:,} throttled, rate limit {limit}{strategy}"
    )
    return line + "".join(f" | {note}" for note in notes)


def summary(
    board: Board, *, title: str = "summary", max_problems: int = 10, wrap: bool = True
) -> RenderableType:
    """The closing tables: jobs per final state, requests by outcome, the jobs that failed.

    Args:
        board: the finished run.
        title: the first table's title.
        max_problems: how many failed/stopped/errored jobs to list.
        wrap: wrap long failure reasons (else cut them to one line).
    """
    counts = board.counts()
    jobs = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_footer=True)
    jobs.add_column("status", footer="total")
    jobs.add_column("jobs", justify="right", footer=str(board.total))
    for state, count in counts.items():
        if count:
            jobs.add_row(Text(state, style=STYLES.get(state, "")), str(count))

    requests = Table(title="requests", box=box.SIMPLE_HEAD, title_justify="left")
    requests.add_column("outcome")
    requests.add_column("count", justify="right")
    stats = board.stats
    if stats is not None:
        for outcome, count in stats.requests.items():
            requests.add_row(outcome, f"{count:,}")
        requests.add_row("retries", f"{stats.retries:,}")
        # List calls (sweeps) are counted apart from describes, by their own outcomes.
        for outcome, count in stats.list_requests.items():
            if count:
                requests.add_row(f"list {outcome}", f"{count:,}")
    requests.add_row("peak req/s", f"{board.peak_rate:,.1f}")
    requests.add_row("elapsed", f"{board.elapsed:.1f} s")

    grid = Table.grid(padding=(0, 4))
    grid.add_row(jobs, requests)
    parts: list[RenderableType] = [grid]
    # Kept as events came: a walk of every job (100,000 of them) would hold the loop.
    problems = board.problems
    if problems:
        table = Table(
            title="did not complete",
            box=box.SIMPLE_HEAD,
            title_justify="left",
            caption_justify="left",
        )
        shown = list(itertools.islice(problems.items(), max_problems))
        # Names and statuses keep their width; only the reason gives way on a narrow screen.
        table.add_column("job", no_wrap=True, min_width=max(len(name) for name, _ in shown))
        table.add_column("status", no_wrap=True, min_width=7)
        table.add_column("reason", overflow="fold" if wrap else "ellipsis", no_wrap=not wrap)
        for name, state in shown:
            table.add_row(name, Text(state, style=STYLES[state]), board.details.get(name, ""))
        if len(problems) > max_problems:
            table.caption = f"and {len(problems) - max_problems} more"
        parts.append(table)
    if board.interrupted:
        parts.append(Text("interrupted: stopped watching before every job finished", "yellow"))
    elif board.timed_out:
        parts.append(Text("timed out: stopped watching before every job finished", "yellow"))
    return Group(*parts)


def final_lines(board: Board) -> list[str]:
    """``NAME  STATUS  [reason]`` for every job, aligned (the output of ``wait``)."""
    width = max((len(name) for name in board.status), default=0)
    unfinished = board.unfinished()
    lines = []
    for name, state in board.status.items():
        line = f"{name:<{width}}  {state}"
        if state == PENDING or name in unfinished:
            line += "  (not finished)"
        detail = board.details.get(name)
        if detail:
            line += f"  {detail}"
        lines.append(line)
    return lines
