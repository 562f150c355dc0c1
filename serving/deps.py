"""Dependencies of the routes, as ``Annotated`` aliases so tests can override any of them.

They are ``async``: FastAPI runs a sync dependency in a worker thread, and a thread hop
per dependency costs more than the work these do (the token lookup is cached).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from configs.settings import Settings
from serving.auth import COOKIE, Principal
from serving.db_read import RunCache
from serving.fresh import FreshScorer
from serving.logsafe import mark_sensitive
from serving.metrics import Metrics
from serving.model_cache import ModelCache


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_models(request: Request) -> ModelCache:
    return request.app.state.models


async def get_fresh(request: Request) -> FreshScorer:
    return request.app.state.fresh


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_runs(request: Request) -> RunCache:
    return request.app.state.runs


bearer = HTTPBearer(auto_error=False, description="A rep's or manager's token (`cem tokens`)")


def request_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token of the Authorization header, else the reps' page sign-in cookie."""
    if credentials is not None and credentials.credentials:
        return credentials.credentials
    return request.cookies.get(COOKIE) or None


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ModelsDep = Annotated[ModelCache, Depends(get_models)]
FreshDep = Annotated[FreshScorer, Depends(get_fresh)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RunsDep = Annotated[RunCache, Depends(get_runs)]


async def optional_principal(
    request: Request,
    engine: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    return request.app.state.principals.get(engine, request_token(request, credentials))


async def get_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    """The caller; 401 without a valid token."""
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid token", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_manager(principal: PrincipalDep) -> Principal:
    """Managers (and the systems that hold a manager token) only; 403 for a rep."""
    if not principal.is_manager:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a manager token is required")
    return principal


ManagerDep = Annotated[Principal, Depends(get_manager)]


async def mark_path_ids(request: Request) -> None:
    """Router dependency: a customer id in the path is masked in every log line of the request."""
    mark_sensitive(request.path_params.get("customer_id"))


def require_access(principal: Principal, rep_id: str | None) -> None:
    """403 unless the caller may see this rep's data."""
    if not principal.may_see(rep_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this customer or list belongs to another rep")
