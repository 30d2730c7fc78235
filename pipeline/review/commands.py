"""`review` (the browser app) and `report --html` (the competition report as one file). `pipeline/cli.py`
declares them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.core.commandline import DEFAULT_PARAMS, ParamsOpt


def review(
    port: Annotated[int, typer.Option(help="Port to listen on; 0: any free one.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback lets other machines in, and needs --tls-cert and --tls-key.")] = "127.0.0.1",
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS with: needed for a --host other than loopback.", exists=True, dir_okay=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).", exists=True, dir_okay=False)] = None,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the app in the browser.")] = True,
    params_file: ParamsOpt = DEFAULT_PARAMS,
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
    html_out: Annotated[Path, typer.Option("--html", help="Write the report as one HTML file to share.")],
    params_file: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """The competition report per climb and view (truth where annotated, the model's prediction otherwise):
    attempts, time to the first one, reading before each, brushing, time per phase."""
    from pipeline.core import params
    from pipeline.core.atomic import atomic_output
    from pipeline.review.report import html_page, rows

    p = params.load(params_file)
    found = rows(p, Path.cwd())
    with atomic_output(html_out) as tmp:
        tmp.write_text(html_page(found, list(p.labels.classes), default=p.labels.default))
    typer.echo(f"{html_out}: {len(found)} video(s), "
               f"{sum(r['source'] == 'truth' for r in found)} from their annotation")
