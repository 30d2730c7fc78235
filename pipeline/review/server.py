"""The review app: pages, and the JSON API under /api that the pages themselves use, served by uvicorn on
127.0.0.1 behind `guard.Guard`.

    GET /api/videos                      the classes and their colours, and one row per video (at once)
    GET /api/stale                       per video, the stages `dvc status` says would rerun (seconds)
    GET /api/videos/{key}                tracks, fps, frames, classes, confidence, persons, the sheet's version
    GET /api/videos/{key}/frames/{i}.jpg the frames stage's JPG of frame i
    PUT /api/videos/{key}/segments       {"base": VERSION, "segments": [{"label", "start", "end"}]} (seconds)
    POST /api/videos/{key}/add           {"climb": NAME}: an unannotated video, its sheet saved, into `videos`
    GET /api/report                      the competition report (?format=csv|xlsx to download)
"""
from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.core import params
from pipeline.core.errors import BouldersegError
from pipeline.review import data, report
from pipeline.review.guard import BodyTooLarge, Guard
from pipeline.review.save import Stale, add_to_dataset, save, version
from pipeline.views.look import video_of
from pipeline.views.summary import stale_or_busy

STATIC = Path(__file__).with_name("static")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SEGMENTS = 'expected {"base": VERSION or null, "segments": [{"label": CLASS, "start": SECONDS, "end": SECONDS}, ...]}'


class BadBody(ValueError):
    """A request body that is not the JSON a route takes; the message says why."""


def _attachment(suffix: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="competition-report.{suffix}"'}


def _number(text: str) -> float | int:
    """A JSON number, refused when it is not a finite one of sensible size (1e999, 400 digits)."""
    if len(text) > 24:
        raise BadBody(f"the number {text[:12]}… is too long")
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise BadBody(f"the number {text} is not finite")
    return value


def _constant(text: str) -> None:
    raise BadBody(f"{text} is not a number JSON allows")


async def _body(request: Request) -> object:
    """The request's JSON, or BadBody/BodyTooLarge; nesting beyond the decoder's depth is refused, not a 500."""
    try:
        return json.loads(await request.body(), parse_int=_number, parse_float=_number, parse_constant=_constant)
    except RecursionError:
        raise BadBody("the body is nested too deeply") from None
    except BadBody:
        raise
    except ValueError:
        raise BadBody("the body is not JSON") from None


def _refused(e: Exception) -> JSONResponse:
    """The answer to a request the app will not carry out."""
    if isinstance(e, BodyTooLarge):
        return JSONResponse({"error": "request body too large"}, status_code=413)
    if isinstance(e, BadBody):
        return JSONResponse({"error": str(e)}, status_code=400)
    if isinstance(e, data.UnknownVideo):
        return JSONResponse({"error": str(e)}, status_code=404)
    if isinstance(e, Stale):
        return JSONResponse({"error": str(e), "current": e.current}, status_code=409)
    return JSONResponse({"error": str(e)}, status_code=422)


def colours(p: params.Params) -> dict[str, str]:
    return data.colours(list(p.labels.classes), p.labels.default)


def build(root: Path, params_file: Path, *, token: str, names: tuple[str, ...] = (), secure: bool = False) -> Guard:
    """The app for the project at `root` (the working directory: params.yaml's paths are relative to it),
    guarded by `token`; `names`: Host names besides loopback it answers to, `secure`: served over TLS."""

    def load() -> params.Params:
        return params.load(root / params_file)

    def page(request: Request) -> Response:
        return FileResponse(STATIC / request.scope["route"].name)

    def videos(request: Request) -> Response:  # plain functions: Starlette runs them on its thread pool
        p = load()
        rows = [data.video_row(p, key, None, root) for key in [*p.videos, *p.unannotated]]
        return JSONResponse({"classes": list(p.labels.classes), "colours": colours(p), "videos": rows})

    def stale(request: Request) -> Response:
        p = load()
        keys = [*p.videos, *p.unannotated]
        if (found := stale_or_busy(root)) is None:
            return JSONResponse({"stale": None, "reason": "DVC is busy (a `dvc repro` holds its lock)"})
        return JSONResponse({"stale": {k: sorted(s.partition("@")[0] for s in found if video_of(s, keys) == k)
                                       for k in keys}})

    def video(request: Request) -> Response:
        try:
            p, key = load(), request.path_params["key"]
            served = version(root / data.reviewed_sheet(data.registered(p, key)))  # before the tracks: a save
            detail = data.video_detail(p, key, root)  # between the two reads makes the page's next save a 409
        except data.UnknownVideo as e:
            return _refused(e)
        detail |= {"version": served, "colours": colours(p)}
        return JSONResponse(detail)

    def frame(request: Request) -> Response:
        try:
            path = data.frame_file(load(), request.path_params["key"], request.path_params["index"], root)
        except data.UnknownVideo as e:
            return _refused(e)
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def segments(request: Request) -> Response:
        try:
            body = await _body(request)
            if not (isinstance(body, dict) and isinstance(body.get("segments"), list)
                    and all(isinstance(s, dict) for s in body["segments"])
                    and (body.get("base") is None or isinstance(body["base"], str))):
                raise BadBody(SEGMENTS)
            saved = await run_in_threadpool(save, root, params_file, request.path_params["key"], body["segments"],
                                            base=body.get("base"))
        except (BodyTooLarge, BadBody, BouldersegError) as e:
            return _refused(e)
        return JSONResponse({"sheet": saved.sheet.as_posix(), "counts": saved.counts, "seconds": saved.seconds,
                             "version": saved.version, "kept": saved.kept.as_posix(),
                             "replaced": saved.replaced and saved.replaced.as_posix()})

    async def add(request: Request) -> Response:
        try:
            body = await _body(request)
            climb = body.get("climb") if isinstance(body, dict) else None
            if not isinstance(body, dict) or not (climb is None or isinstance(climb, str)):
                raise BadBody('expected {"climb": NAME}')
            said = await run_in_threadpool(add_to_dataset, root, params_file, request.path_params["key"],
                                           climb=climb or None)
        except (BodyTooLarge, BadBody, BouldersegError) as e:
            return _refused(e)
        return JSONResponse({"added": said})

    async def competition(request: Request) -> Response:
        p = load()
        classes = list(p.labels.classes)
        found = await run_in_threadpool(report.rows, p, root)
        kind = request.query_params.get("format", "json")
        if kind == "json":
            return JSONResponse({"classes": classes, "colours": colours(p), "rows": found})
        frame = report.table(found, classes)
        if kind == "csv":
            return PlainTextResponse(report.csv_text(frame), media_type="text/csv", headers=_attachment("csv"))
        if kind == "xlsx":
            return Response(report.xlsx_bytes(frame), headers=_attachment("xlsx"), media_type=XLSX)
        return JSONResponse({"error": "format is json, csv or xlsx"}, status_code=400)

    app = Starlette(routes=[
        Route("/", page, name="index.html"),
        Route("/videos/{key}", page, name="video.html"),
        Route("/report", page, name="report.html"),
        Route("/api/videos", videos),
        Route("/api/stale", stale),
        Route("/api/videos/{key}", video),
        Route("/api/videos/{key}/frames/{index:int}.jpg", frame),
        Route("/api/videos/{key}/segments", segments, methods=["PUT"]),
        Route("/api/videos/{key}/add", add, methods=["POST"]),
        Route("/api/report", competition),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])
    return Guard(app, token=token, names=names, secure=secure)
