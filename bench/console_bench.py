"""Console latency, driven headless: `python -m bench.console_bench [--size 15000] [--json]`.

What a trader feels, measured from the key (or the start) to the frame that shows its
effect. Textual's headless driver skips writing frames to a terminal, so the probe below
renders every frame's terminal bytes itself (the work a real terminal session pays) and
timestamps it. Keys are sent through the driver as a terminal would send them, without
Pilot's wait-for-idle, so a busy app shows up as latency instead of being waited out.

Figures:
- first_paint_s: `SpoApp()` to the first frame (status line, tabs, footer).
- loaded_s: to the frame after the sample universe is in its grid.
- switch_tab_ms: key `1`..`5` to the frame of the new tab (median, max).
- open_universe_ms: the N-row universe mounted in its grid to its first frame.
- key_to_repaint_ms: `down` / `pagedown` in the N-row grid to the next frame.
- during_solve: while an N-instrument solve runs (in the solver's child process, as the
  console does), a `down` every 100 ms: the median and worst key-to-repaint, and the
  longest gap between frames; during_solve_in_thread: the same with the solve in the worker
  thread, which is what the child process is there to avoid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from textual import events
from textual._compositor import CompositorUpdate

from console.app import SpoApp
from core.settings import RunConfig
from sample_data import SAMPLE_AS_OF, SAMPLE_DIR

SIZE = (120, 40)
CLOCK = lambda: SAMPLE_AS_OF  # noqa: E731 - fixed run ids, like the tests


class FrameProbe:
    """Timestamps every frame the app produces, rendering its terminal bytes as it goes."""

    def __init__(self, app: SpoApp) -> None:
        self.app = app
        self.frames: list[float] = []
        inner = app._display

        def display(screen, renderable) -> None:
            if renderable is not None and not app._batch_count:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(app.console)
                self.frames.append(time.perf_counter())
            inner(screen, renderable)

        app._display = display

    async def next_frame_after(self, t: float, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            later = [f for f in self.frames if f > t]
            if later:
                return later[0]
            await asyncio.sleep(0.001)
        raise TimeoutError("no frame after the key")

    async def key(self, name: str) -> float:
        """Send a key as the terminal would and return ms until the next frame."""
        event = events.Key(name, name if len(name) == 1 else None)
        event.set_sender(self.app)
        t = time.perf_counter()
        self.app._driver.send_message(event)
        return 1e3 * (await self.next_frame_after(t) - t)


def _stats(ms: list[float]) -> dict:
    return {"median": round(statistics.median(ms), 1), "max": round(max(ms), 1), "n": len(ms)}


async def bench_sample() -> dict:
    cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    t0 = time.perf_counter()
    app = SpoApp(cfg, clock=CLOCK, token=lambda: "bench")
    probe = FrameProbe(app)
    async with app.run_test(size=SIZE) as pilot:
        first = await probe.next_frame_after(t0)
        await app.workers.wait_for_complete()
        await pilot.pause()
        loaded = probe.frames[-1]
        switches = []
        for _ in range(3):
            for key in "13452":
                switches.append(await probe.key(key))
                await pilot.pause()
        return {"first_paint_s": round(first - t0, 3), "loaded_s": round(loaded - t0, 3),
                "switch_tab_ms": _stats(switches)}


async def bench_large(data: Path, size: int, solve: bool) -> dict:
    from screens.data import DataUniverse

    cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    cfg.data.dir = data
    cfg.as_of = SAMPLE_AS_OF
    app = SpoApp(cfg, clock=CLOCK, token=lambda: "bench")
    probe = FrameProbe(app)
    out: dict = {"size": size}
    async with app.run_test(size=SIZE) as pilot:
        t0 = time.perf_counter()
        await app.workers.wait_for_complete()
        await pilot.pause()
        out["load_and_build_s"] = round(time.perf_counter() - t0, 2)
        app.action_show_tab("data")
        await pilot.pause()
        # Re-show the loaded universe: the grid is unmounted and a new one mounted over the
        # full frame, which is what opening it costs.
        t = time.perf_counter()
        await app.query_one(DataUniverse).show_state(app.state)
        out["open_universe_ms"] = round(1e3 * (await probe.next_frame_after(t) - t), 1)
        out["universe_rows"] = app.state.universe.frame.height
        await pilot.pause()
        downs = []
        for _ in range(30):
            downs.append(await probe.key("down"))
            await pilot.pause()
        pages = []
        for _ in range(10):
            pages.append(await probe.key("pagedown"))
            await pilot.pause()
        out["key_to_repaint_ms"] = {"down": _stats(downs), "pagedown": _stats(pages)}
        if solve:
            out["during_solve"] = await _during_solve(app, probe, pilot)
            # The same solve in the worker thread, for the comparison in the report.
            app.solve_in_process = False
            out["during_solve_in_thread"] = await _during_solve(app, probe, pilot)
    return out


async def _during_solve(app: SpoApp, probe: FrameProbe, pilot) -> dict:
    app.action_show_tab("data")
    await pilot.pause()
    app.query_one("#data-universe #grid").focus()
    start = time.perf_counter()
    app.action_solve()
    app.action_show_tab("data")  # keep scrolling the universe while it solves
    app.query_one("#data-universe #grid").focus()
    latencies = []
    while app.solving:
        latencies.append(await probe.key("down"))
        await asyncio.sleep(0.1)
    end = time.perf_counter()
    await app.workers.wait_for_complete()
    # Keys still queued behind a stalled loop are handled before the app may close.
    for _ in range(20):
        await pilot.pause()
    frames = [f for f in probe.frames if start <= f <= end]
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    return {"solve_s": round(end - start, 2), "status": app.result.status if app.result
            else None, "keys": _stats(latencies),
            "longest_frame_gap_ms": round(1e3 * max(gaps), 1) if gaps else None,
            "frames": len(frames)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console_bench")
    parser.add_argument("--size", type=int, default=15_000)
    parser.add_argument("--data", help="an existing data folder of that size (else generated)")
    parser.add_argument("--no-solve", action="store_true", help="skip the solve measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = {"terminal": f"{SIZE[0]}x{SIZE[1]}", "sample": asyncio.run(bench_sample())}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / f"n{args.size}"
        if not args.data:
            from core.data.sample import generate, write_tables
            write_tables(generate(args.size, 7), data)
        result["large"] = asyncio.run(bench_large(data, args.size, not args.no_solve))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_report(result))
    return 0


def format_report(r: dict) -> str:
    s, big = r["sample"], r["large"]
    lines = [
        f"console, headless, {r['terminal']}",
        f"  start to first paint        {1e3 * s['first_paint_s']:8.0f} ms   (aim < 1000)",
        f"  start to sample data shown  {1e3 * s['loaded_s']:8.0f} ms",
        f"  switch tab                  {s['switch_tab_ms']['median']:8.1f} ms median, "
        f"{s['switch_tab_ms']['max']:.1f} max   (aim < 100)",
        f"  {big['size']:,}-row universe: load+build {big['load_and_build_s']:.2f} s",
        f"  open the universe grid      {big['open_universe_ms']:8.1f} ms   (aim < 300)",
        f"  down, key to repaint        {big['key_to_repaint_ms']['down']['median']:8.1f} ms "
        f"median, {big['key_to_repaint_ms']['down']['max']:.1f} max   (aim < 50)",
        f"  pagedown, key to repaint    {big['key_to_repaint_ms']['pagedown']['median']:8.1f} "
        f"ms median, {big['key_to_repaint_ms']['pagedown']['max']:.1f} max",
    ]
    for key, how in (("during_solve", "solver process"),
                     ("during_solve_in_thread", "worker thread")):
        d = big.get(key)
        if d:
            lines += [
                f"  during a {big['size']:,} solve in the {how} ({d['solve_s']:.1f} s, "
                f"{d['status']}): key to repaint {d['keys']['median']:.1f} ms median, "
                f"{d['keys']['max']:.1f} max over {d['keys']['n']} keys; longest gap between "
                f"frames {d['longest_frame_gap_ms']:.0f} ms"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
