"""Dependencies of the routes, as ``Annotated`` aliases so tests can override any of them.

They are ``async``: FastAPI runs a sync dependency in a worker thread, and a thread hop
per dependency costs more than the work these do (the token lookup is cached). The
customer view, the hot route, resolves its caller with ``caller`` instead (same rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from configs.settings import Settings
from serving.auth import SESSION_COOKIE, Principal, PrincipalCache
from serving.caches.fresh import FreshScorer
from serving.caches.model_cache import ModelCache
from serving.caches.view_cache import ViewCache
from serving.db.runs import RunCache
from serving.metrics import Metrics


@dataclass(frozen=True)
class Services:
    """Everything a request may need, built once per app (``create_app``)."""

    settings: Settings
    engine: Engine
    models: ModelCache
    fresh: FreshScorer
    metrics: Metrics
    runs: RunCache
    principals: PrincipalCache
    views: ViewCache


async def get_services(request: Request) -> Services:
    """One dependency for the app's state: hot routes resolve it once instead of one per part."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_engine(services: ServicesDep) -> Engine:
    return services.engine


async def get_models(services: ServicesDep) -> ModelCache:
    return services.models


async def get_fresh(services: ServicesDep) -> FreshScorer:
    return services.fresh


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


bearer = HTTPBearer(auto_error=False, description="A rep's or manager's token (`cem tokens`)")


def request_principal(
    request: Request, services: Services, credentials: HTTPAuthorizationCredentials | None
) -> Principal | None:
    """The caller of the bearer token in the Authorization header, else of the reps' page
    session cookie; expired ones included (``authenticated`` tells them apart)."""
    if credentials is not None and credentials.credentials:
        return services.principals.get(services.engine, credentials.credentials)
    session = request.cookies.get(SESSION_COOKIE)
    return services.principals.get(services.engine, session, session=True)


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ModelsDep = Annotated[ModelCache, Depends(get_models)]
FreshDep = Annotated[FreshScorer, Depends(get_fresh)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def optional_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller, or None without a valid, unexpired token or session (the page then signs in)."""
    principal = request_principal(request, services, credentials)
    return None if principal is None or principal.expired() else principal


def authenticated(principal: Principal | None) -> Principal:
    """The caller; 401 without a valid token, or with an expired one (saying so)."""
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid token", headers={"WWW-Authenticate": "Bearer"}
        )
    if principal.expired():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"token or session expired at {principal.expires_at:%Y-%m-%d %H:%M} UTC: "
            "ask for a new token (`cem tokens`) or sign in again",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


async def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller; 401 without a valid token."""
    return authenticated(request_principal(request, services, credentials))


async def caller(request: Request) -> tuple[Principal, Services]:
    """The authenticated caller and the services, as ``PrincipalDep`` and ``ServicesDep`` give them,
    resolved without FastAPI's dependency solver: the hottest route calls this itself, as the
    solver's tens of microseconds per dependency and request cost more than the route's own work.
    Such a route declares ``BEARER_DOC`` so OpenAPI still shows the bearer token."""
    services: Services = request.app.state.services
    return authenticated(request_principal(request, services, await bearer(request))), services


BEARER_DOC = {"security": [{"HTTPBearer": []}]}  # a route's OpenAPI security, as ``bearer`` declares it


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_manager(principal: PrincipalDep) -> Principal:
    """Managers (and the systems that hold a manager token) only; 403 for a rep."""
    if not principal.is_manager:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a manager token is required")
    return principal


ManagerDep = Annotated[Principal, Depends(get_manager)]


NOT_FOUND = "unknown customer"  # also the answer for another rep's customer


def not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)


def require_access(principal: Principal, rep_id: str | None) -> None:
    """403 unless the caller may see this rep's list (rep ids are no secret; customer ids are)."""
    if not principal.may_see(rep_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this list belongs to another rep")


def require_customer(principal: Principal, owner: str | None) -> None:
    """404, the very answer an unknown id gets, unless the caller may see this customer: a 403
    would tell a rep which ids exist in other reps' books."""
    if not principal.may_see(owner):
        raise not_found()
