"""The review app: pages, and the JSON API under /api that the pages themselves use, served by uvicorn on
127.0.0.1 behind `guard.Guard`.

    GET /api/videos                      the classes, and one row per video
    GET /api/videos/{key}                tracks, fps, frames, classes, confidence, persons
    GET /api/videos/{key}/frames/{i}.jpg the frames stage's JPG of frame i
    PUT /api/videos/{key}/segments       [{"label", "start", "end"}] (seconds): saved as the video's sheet
    POST /api/videos/{key}/add           {"climb": NAME}: an unannotated video, its sheet saved, into `videos`
    GET /api/report                      the competition report (?format=csv|xlsx to download)
"""
from __future__ import annotations

import json
import socket
import webbrowser
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.core import params
from pipeline.core.errors import BouldersegError, warn
from pipeline.review import data, report
from pipeline.review.guard import BodyTooLarge, Guard, loopback_host, new_token
from pipeline.review.save import add_to_dataset, save
from pipeline.views.look import stale_stages

STATIC = Path(__file__).with_name("static")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _attachment(suffix: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="competition-report.{suffix}"'}


def build(root: Path, params_file: Path, *, token: str, host: str | None = None) -> Guard:
    """The app for the project at `root` (the working directory: params.yaml's paths are relative to it),
    guarded by `token`."""

    def load() -> params.Params:
        return params.load(root / params_file)

    def page(request: Request) -> Response:
        return FileResponse(STATIC / request.scope["route"].name)

    def videos(request: Request) -> Response:  # plain functions: Starlette runs them on its thread pool
        p = load()
        try:
            stale = stale_stages(root)
        except BouldersegError:  # DVC's lock is held (a `dvc repro` running): stale stages unknown for now
            stale = None
        rows = [data.video_row(p, key, stale, root) for key in [*p.videos, *p.unannotated]]
        return JSONResponse({"classes": list(p.labels.classes), "videos": rows})

    def video(request: Request) -> Response:
        try:
            return JSONResponse(data.video_detail(load(), request.path_params["key"], root))
        except data.UnknownVideo as e:
            return JSONResponse({"error": str(e)}, status_code=404)

    def frame(request: Request) -> Response:
        try:
            path = data.frame_file(load(), request.path_params["key"], request.path_params["index"], root)
        except data.UnknownVideo as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def segments(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except BodyTooLarge:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(body, list) or not all(isinstance(s, dict) for s in body):
            return JSONResponse({"error": 'expected [{"label": CLASS, "start": SECONDS, "end": SECONDS}, ...]'},
                                status_code=400)
        try:
            saved = await run_in_threadpool(save, root, params_file, request.path_params["key"], body)
        except data.UnknownVideo as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        except BouldersegError as e:
            return JSONResponse({"error": str(e)}, status_code=422)
        return JSONResponse({"sheet": saved.sheet.as_posix(), "counts": saved.counts})

    async def add(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            said = await run_in_threadpool(add_to_dataset, root, params_file, request.path_params["key"],
                                           climb=body.get("climb") or None)
        except BodyTooLarge:
            return JSONResponse({"error": "request body too large"}, status_code=413)
        except (ValueError, AttributeError):
            return JSONResponse({"error": 'expected {"climb": NAME}'}, status_code=400)
        except data.UnknownVideo as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        except BouldersegError as e:
            return JSONResponse({"error": str(e)}, status_code=422)
        return JSONResponse({"added": said})

    async def competition(request: Request) -> Response:
        p = load()
        found = await run_in_threadpool(report.rows, p, root)
        kind = request.query_params.get("format", "json")
        if kind == "json":
            return JSONResponse({"classes": list(p.labels.classes), "rows": found})
        frame = report.table(found, list(p.labels.classes))
        if kind == "csv":
            return PlainTextResponse(frame.to_csv(index=False), media_type="text/csv", headers=_attachment("csv"))
        if kind == "xlsx":
            return Response(report.xlsx_bytes(frame), headers=_attachment("xlsx"), media_type=XLSX)
        return JSONResponse({"error": "format is json, csv or xlsx"}, status_code=400)

    app = Starlette(routes=[
        Route("/", page, name="index.html"),
        Route("/videos/{key}", page, name="video.html"),
        Route("/report", page, name="report.html"),
        Route("/api/videos", videos),
        Route("/api/videos/{key}", video),
        Route("/api/videos/{key}/frames/{index:int}.jpg", frame),
        Route("/api/videos/{key}/segments", segments, methods=["PUT"]),
        Route("/api/videos/{key}/add", add, methods=["POST"]),
        Route("/api/report", competition),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])
    return Guard(app, token=token, host=host)


def serve(*, root: Path, params_file: Path, host: str = "127.0.0.1", port: int = 8765, browser: bool = True) -> None:
    """Serve the app until Ctrl-C; the first line printed is its address, token included."""
    import uvicorn

    if not loopback_host(host):
        warn(f"--host {host}: the review app is reachable from other machines; anyone with the token can edit sheets.")
    token = new_token()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from the moment the address is printed
    except OSError as e:
        raise BouldersegError(f"cannot listen on {host}:{port}: {e.strerror}; pick another --port (0: any free one).")
    url = f"http://{host if family == socket.AF_INET else f'[{host}]'}:{sock.getsockname()[1]}/?token={token}"
    print(url, flush=True)
    if browser:
        webbrowser.open(url)
    app = build(root, params_file, token=token, host=None if loopback_host(host) else host)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
