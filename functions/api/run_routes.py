"""The run listing's routes (GET /runs, GET /runs/counts, a loop's iterations), a router the api
handler includes (app.py). Parameters are parsed by infra/listing_params.py: a bad one is a 400."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.api import schemas as doc
from infra.engine.run_listing import MAX_ITERATIONS_PAGE, UnknownLoop, summary_view
from infra.json_http import dumps
from infra.listing_params import count_window, encode_cursor, iteration_page, run_query
from infra.service import ApiError
from infra.wiring import get_engine

router = Router()


def _params() -> dict[str, str]:
    return dict(router.current_event.query_string_parameters or {})


def _ok(body: dict) -> Response:
    return Response(status_code=200, content_type="application/json", body=dumps(body))


@router.get("/runs", **doc.route("Runs, newest first, filtered and paged through indexes", (200, doc.RunPage),
                                 errors=(400,), tags=("runs",),
                                 query=(("status", "one run status"), ("workflow", "a workflow id"),
                                        ("since", "ISO-8601, inclusive"), ("until", "ISO-8601, exclusive"),
                                        ("limit", "1 to 200, default 50"),
                                        ("cursor", "the next_cursor of the previous page"))))
def list_runs():  # no return annotation: Powertools would read it as the schema
    query = run_query(_params())  # BadQuery: a 400 (app.py)
    page = get_engine().listing.list_runs(query)
    cursor = encode_cursor(page.runs[-1].position, query) if page.more and page.runs else None
    return _ok({"runs": [summary_view(s) for s in page.runs], "next_cursor": cursor, "limit": query.limit})


@router.get("/runs/counts", **doc.route("How many runs are in each status", (200, doc.RunCounts), errors=(400,),
                                        tags=("runs",), query=(("workflow", "a workflow id"),
                                                               ("since", "ISO-8601, inclusive"),
                                                               ("until", "ISO-8601, exclusive"))))
def count_runs():  # no return annotation: Powertools would read it as the schema
    window = count_window(_params())
    counts = get_engine().listing.count_runs(window.workflow_id, window.since, window.until)
    return _ok({"workflow_id": window.workflow_id, "since": window.since, "until": window.until, "counts": counts,
                "total": sum(counts.values())})


@router.get("/runs/<run_id>/tasks/<task_id>/iterations",
            **doc.route("A loop's iterations, a page at a time", (200, doc.IterationPage), errors=(400, 404),
                        tags=("runs",)))
def list_iterations(run_id: str, task_id: str):
    try:
        start, limit = iteration_page(_params(), MAX_ITERATIONS_PAGE)
        page = get_engine().listing.iterations(run_id, task_id, start, limit)
    except UnknownLoop as error:
        raise ApiError(404, str(error)) from None
    if page is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    following = page.pop("next")
    return _ok({**page, "next_cursor": None if following is None else str(following)})
