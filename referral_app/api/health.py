"""``GET /api/v1/health/`` (and ``/api/health``): is the app able to serve, and if not, why."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from referral_app.infra.health import check_health

ServiceStatus = Literal["ok", "unavailable"]


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "database": "ok", "redis": "not configured"}]}
    )

    status: ServiceStatus = Field(description='"ok" when every configured service answers.')
    database: ServiceStatus = Field(description="`SELECT 1` on the database.")
    redis: Literal["ok", "unavailable", "not configured"] = Field(
        description='PING to `REFLEX_REDIS_URL`; "not configured" without it.'
    )


router = APIRouter(prefix="/api/v1")


@router.get(
    "/health/",
    tags=["health"],
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database or Redis does not answer."}},
)
async def health() -> JSONResponse:
    """The database and Redis, each checked with a timeout of a few seconds: 200 when all
    answer, 503 naming the one that does not. For load balancers and container health checks."""
    report = await check_health()
    return JSONResponse(
        report.as_dict(), status_code=200 if report.ok else 503, headers={"Cache-Control": "no-store"}
    )
