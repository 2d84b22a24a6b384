"""The run listing's routes (GET /runs, GET /runs/counts, a loop's iterations), a router the api
handler includes (app.py). Parameters are parsed by infra/listing_params.py: a bad one is a 400."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from infra.engine.run_listing import MAX_ITERATIONS_PAGE, UnknownLoop, summary_view
from infra.json_http import dumps
from infra.listing_params import BadQuery, count_window, encode_cursor, iteration_page, run_query
from infra.service import ApiError
from infra.wiring import get_engine

router = Router()


def _params() -> dict[str, str]:
    return dict(router.current_event.query_string_parameters or {})


def _ok(body: dict) -> Response:
    return Response(status_code=200, content_type="application/json", body=dumps(body))


@router.get("/runs")
def list_runs() -> Response:
    try:
        query = run_query(_params())
    except BadQuery as error:
        raise ApiError(400, str(error)) from None
    page = get_engine().listing.list_runs(query)
    cursor = encode_cursor(page.runs[-1].position, query) if page.more and page.runs else None
    return _ok({"runs": [summary_view(s) for s in page.runs], "next_cursor": cursor, "limit": query.limit})


@router.get("/runs/counts")
def count_runs() -> Response:
    try:
        window = count_window(_params())
    except BadQuery as error:
        raise ApiError(400, str(error)) from None
    counts = get_engine().listing.count_runs(window.workflow_id, window.since, window.until)
    return _ok({"workflow_id": window.workflow_id, "since": window.since, "until": window.until, "counts": counts,
                "total": sum(counts.values())})


@router.get("/runs/<run_id>/tasks/<task_id>/iterations")
def list_iterations(run_id: str, task_id: str) -> Response:
    try:
        start, limit = iteration_page(_params(), MAX_ITERATIONS_PAGE)
        page = get_engine().listing.iterations(run_id, task_id, start, limit)
    except BadQuery as error:
        raise ApiError(400, str(error)) from None
    except UnknownLoop as error:
        raise ApiError(404, str(error)) from None
    if page is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    following = page.pop("next")
    return _ok({**page, "next_cursor": None if following is None else str(following)})
