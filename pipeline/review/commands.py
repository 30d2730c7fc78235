"""`review` (the browser app) and `report` (the competition report: a table, JSON, CSV or one HTML file).
`pipeline/cli.py` declares them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, EditedParamsOpt, ParamsOpt


def review(
    port: Annotated[int, typer.Option(help="Port to listen on; 0: any free one.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback lets other machines in, and needs --tls-cert and --tls-key.")] = "127.0.0.1",
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS with: needed for a --host other than loopback.", exists=True, dir_okay=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).", exists=True, dir_okay=False)] = None,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the app in the browser.")] = True,
    params_file: EditedParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Look at every video, correct the model's phases in the browser, save the sheet; the competition report.

    Prints the app's address (with its token, for scripts) on the first line, opens the browser with a one-time
    code (the token is on no command line) and serves until Ctrl-C. It reads what the stages wrote and recomputes
    nothing; saving writes data/raw/annotations/<key>.reviewed.xlsx (every version kept in
    data/raw/annotations/history/<key>/) and points an annotated video's entry in params.yaml at it.
    """
    from pipeline.core import params
    from pipeline.core.errors import BouldersegError
    from pipeline.review.listen import serve

    params.load(params_file)  # a broken params.yaml stops here, not in the browser
    if (tls_cert is None) != (tls_key is None):
        raise BouldersegError("give both --tls-cert and --tls-key, or neither.")
    serve(root=Path.cwd(), params_file=params_file, host=host, port=port, browser=browser,
          tls=(tls_cert, tls_key) if tls_cert else None)


def report(
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the report as one HTML file to share, instead of printing the table.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the table as CSV (reading times joined with `;`), instead of printing it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON instead of the table.")] = False,
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """The competition report per climb and view (truth where annotated, the model's prediction otherwise):
    attempts, time to the first one, reading before each, brushing, time per phase. Printed as a table (seconds);
    --json, --csv and --html give the same rows."""
    import json

    from pipeline.core import params
    from pipeline.core.atomic import atomic_output
    from pipeline.review.report import csv_text, html_page, rows, table
    from pipeline.views.tables import table as text_table

    p = params.load(params_file)
    found = rows(p, Path.cwd())
    flat = table(found, list(p.labels.classes))
    summary = f"{len(found)} video(s), {sum(r['source'] == 'truth' for r in found)} from their annotation"
    for out, text in ((html_out, lambda: html_page(found, list(p.labels.classes), default=p.labels.default)),
                      (csv_out, lambda: csv_text(flat))):
        if out is not None:
            with atomic_output(out) as tmp:
                tmp.write_text(text())
            typer.echo(f"{out}: {summary}", err=as_json)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    elif html_out is None and csv_out is None:
        shown = flat.drop(columns="model").rename(columns=lambda c: c.removesuffix("_s"))
        cells = shown.astype(object).where(shown.notna() & (shown != ""), "-").to_numpy().tolist()
        typer.echo(text_table(cells, list(shown.columns)) if found else
                   "no video has labels or a prediction yet: `dvc repro` labels the annotated ones.")
        typer.echo(f"{summary}; times in seconds")
