"""`phm evaluate`: a MeasureReport as a readable table on the terminal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import typer
from tqdm import tqdm

from app.config import Settings
from app.fhir.errors import FhirError
from app.measure.period import measurement_period
from app.measure.service import evaluate, load_measure, resolve_subject
from app.store.db import create_database


async def evaluate_command(settings: Settings, measure: str, start: str | None,
                           end: str | None, subject: str | None, report_type: str,
                           out: Path | None) -> None:
    db = create_database(settings)
    try:
        with tqdm(total=3, desc="evaluating", unit="step", leave=False) as bar:
            period = measurement_period(start, end)
            t0 = time.perf_counter()
            async with db.read() as conn:
                is_url = "://" in measure
                loaded = await load_measure(conn, None if is_url else measure,
                                            measure if is_url else None)
                bar.update()
                subj = await resolve_subject(conn, subject, None)
                bar.update()
                report = await evaluate(conn, loaded, period, report_type, subj)
                bar.update()
            dt = time.perf_counter() - t0
    except FhirError as exc:
        raise typer.BadParameter(str(exc)) from None
    finally:
        await db.dispose()
    typer.echo(render(loaded.resource.get("title", measure), report, dt))
    if out is not None:
        out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        typer.echo(f"MeasureReport written to {out}")


def _counts(pops: list[dict[str, Any]]) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p.get("count", 0) for p in pops}


def _score(obj: dict[str, Any]) -> str:
    v = obj.get("measureScore", {}).get("value")
    return f"{v * 100:6.1f}%" if isinstance(v, float) and v <= 1 else "" if v is None else str(v)


def render(title: str, report: dict[str, Any], seconds: float) -> str:
    lines = [f"{title}", f"period {report['period']['start']} .. {report['period']['end']}"
             + (f", subject {report['subject']['reference']}" if report.get("subject") else "")
             + f"  ({seconds:.2f} s)"]
    for group in report["group"]:
        counts = _counts(group["population"])
        names = list(counts)
        short = {n: "".join(w[0] for w in n.split("-")).upper() for n in names}
        lines.append("  " + "  ".join(f"{short[n]}={n}" for n in names))
        header = f"  {'':34s}" + "".join(f"{short[n]:>8s}" for n in names) + "   score"
        lines.append(header)
        lines.append(f"  {'all':34s}" + "".join(f"{counts[n]:8d}" for n in names)
                     + f"  {_score(group)}")
        for strat in group.get("stratifier", []):
            lines.append(f"  by {strat['code'][0]['text']}")
            for stratum in strat["stratum"]:
                label = stratum.get("value", {}).get("text") or " x ".join(
                    c["value"]["text"] for c in stratum.get("component", []))
                sc = _counts(stratum["population"])
                lines.append(f"    {label[:32]:32s}" + "".join(f"{sc.get(n, 0):8d}"
                                                            for n in names)
                             + f"  {_score(stratum)}")
    return "\n".join(lines)
