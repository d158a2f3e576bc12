"""The workbench's HTTP app: server-rendered pages (the report's jinja2 layout and macros) and one JSON write.

Pages: ``/`` compare (query box, query-set picker, 2-3 configurations side by side, grading), ``/queryset`` the
evaluation table of a set, ``/lists`` the judgment list's versions, files and the models trained on them.
``POST /api/grades`` records grades. Handlers are plain ``def``: searches and store locks block, so they run in
FastAPI's thread pool and two browsers are served at once.
"""

from __future__ import annotations

import logging
from importlib.resources import files

from fastapi import FastAPI, Query as Param, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from searchtune.eval.html_report import environment
from searchtune.workbench.auth import AdminKeyMiddleware
from searchtune.workbench.compare import TABLE_METRICS, compare, summary, table_row, unjudged
from searchtune.workbench.configs import BM25
from searchtune.workbench.judgments import SCALES, Grade, JudgmentError, trec_qrels
from searchtune.workbench.lineage import trained_on_lists
from searchtune.workbench.state import Workbench

log = logging.getLogger("searchtune.workbench")


class GradeIn(BaseModel):
    query_id: str = Field(min_length=1, max_length=512)
    query: str = Field(default="", max_length=4096)
    doc_id: str = Field(min_length=1, max_length=512)
    grade: int
    rater: str = Field(default="", max_length=128)


class GradesIn(BaseModel):
    grades: list[GradeIn] = Field(min_length=1, max_length=1000)


def _pick_configs(bench: Workbench, chosen: list[str]) -> tuple[list[str], list[str]]:
    """(available, the 2-3 on the page): the asked ones that exist, else BM25 and the first pipeline."""
    available = bench.targets.configs()
    picked = [c for c in chosen if c in available][:3]
    if not picked:
        picked = available[:2]
    return available, picked


def create_app(bench: Workbench, admin_key_hashes: list[str] | None = None) -> FastAPI:
    app = FastAPI(title="searchtune workbench", docs_url=None, redoc_url=None, openapi_url=None)
    if admin_key_hashes:
        app.add_middleware(AdminKeyMiddleware, key_hashes=admin_key_hashes)
    app.mount("/static", StaticFiles(directory=str(files("searchtune.workbench") / "static")), name="static")
    pages = environment("searchtune.workbench")

    def render(template: str, **values) -> HTMLResponse:
        meta = bench.judgments.meta()
        return HTMLResponse(pages.get_template(template).render(
            list_meta=meta, grades_allowed=SCALES[meta["scale"]], index=bench.targets.index, rater=bench.rater,
            query_sets=bench.query_sets(), **values))

    @app.get("/", response_class=HTMLResponse)
    def compare_page(q: str = "", query_id: str = "", set: str = "", c: list[str] = Param(default=[])):
        available, picked = _pick_configs(bench, c)
        query = bench.query(query_id, q)
        set_queries = {}
        if set:
            try:
                set_queries = bench.query_set(set)
            except KeyError:
                set = ""
            if query is None and set_queries:
                query = next(iter(set_queries.values()))
        lists, missing, grades = [], [], {}
        if query is not None:
            rankings = [bench.targets.search(config, {query.id: query})[query.id] for config in picked]
            grades = bench.grades().get(query.id, {})
            lists = compare(query.id, rankings, grades)
            missing = unjudged(rankings, grades)
        return render("compare.html.j2", title="Compare", query=query, current_set=set, set_queries=set_queries,
                      available=available, picked=picked, lists=lists, unjudged=missing)

    @app.get("/queryset", response_class=HTMLResponse)
    def queryset_page(set: str = "", c: list[str] = Param(default=[])):
        available, picked = _pick_configs(bench, c)
        sets = bench.query_sets()
        set = set if set in sets else sets[0]
        queries = bench.query_set(set)
        grades = bench.grades()
        results = {config: bench.targets.search(config, queries) for config in picked}
        rows = [table_row(qid, query.text, [results[c][qid] for c in picked], grades.get(qid, {}))
                for qid, query in queries.items()]
        return render("queryset.html.j2", title=f"Query set: {set}", current_set=set, available=available,
                      picked=picked, rows=rows, metrics=list(TABLE_METRICS), summary=summary(rows, picked, grades))

    @app.get("/lists", response_class=HTMLResponse)
    def lists_page():
        events = bench.judgments.events()
        raters = sorted({e["rater"] for e in events})
        return render("lists.html.j2", title=f"Judgment list: {bench.judgments.name}", events=events[-50:][::-1],
                      raters=raters, trained=trained_on_lists(bench.judgments.store, bench.judgments.name),
                      qrels=bench.judgments.qrels())

    @app.get("/lists/qrels.txt", response_class=PlainTextResponse)
    def qrels_file(version: int | None = None):
        try:
            return PlainTextResponse(trec_qrels(bench.judgments.qrels(version)))
        except JudgmentError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    @app.get("/lists/judgments.jsonl", response_class=PlainTextResponse)
    def judgments_file():
        return PlainTextResponse(bench.judgments.fs.cat_file(f"{bench.judgments.folder}/judgments.jsonl").decode())

    @app.post("/api/grades")
    async def post_grades(request: Request):
        try:
            payload = GradesIn.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return JSONResponse({"error": f"field '{where}': {first['msg']}"}, status_code=400)
        grades = [Grade(g.query_id, g.query, g.doc_id, g.grade, g.rater or bench.rater) for g in payload.grades]
        try:
            version = await run_in_threadpool(bench.judgments.record, grades)
        except JudgmentError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        log.info("recorded %d grade(s), list %s now at version %d", len(grades), bench.judgments.name, version)
        return {"list": bench.judgments.name, "version": version}

    @app.get("/healthz")
    def health():
        return {"status": "ok", "list": bench.judgments.name, "configs": bench.targets.configs(), "default": BM25}

    return app
