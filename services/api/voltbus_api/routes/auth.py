"""Login, logout, own password, and (admin) users and API tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from voltbus_api.auth_store import ADMIN_USER, INITIAL_PASSWORD_FILE, Role
from voltbus_api.deps import SESSION_COOKIE, AdminDep, ContextDep, PrincipalDep, TokenDep
from voltbus_api.errors import ApiError
from voltbus_api.ratelimit import client_key
from voltbus_api.schemas import Body, error_responses

router = APIRouter(tags=["auth"])
UserName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, Field(min_length=10, max_length=200,
                                description="at least 10 characters")]


class LoginBody(Body):
    """User name and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"username": "admin", "password": "from var/api/initial-admin-password"}]})


class LoginAnswer(BaseModel):
    """A session token (also set as an HttpOnly cookie for the web page)."""

    token: str
    username: str
    role: Role
    expires_at: datetime
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "token": "vb_3q2-…", "username": "admin", "role": "admin",
        "expires_at": "2026-01-08T12:00:00Z"}]})


class Me(BaseModel):
    """The caller."""

    name: str
    role: Role
    kind: str
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "admin", "role": "admin", "kind": "session"}]})


class PasswordBody(Body):
    """Change your own password."""

    current_password: str = Field(min_length=1, max_length=200)
    new_password: Password
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"current_password": "the old one", "new_password": "correct horse battery"}]})


class NewUser(Body):
    """A user to create."""

    username: UserName
    password: Password
    role: Role = Role.VIEWER
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"username": "anna", "password": "correct horse battery", "role": "viewer"}]})


class UserOut(BaseModel):
    """A user (no password)."""

    username: str
    role: Role
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"username": "anna", "role": "viewer"}]})


class RoleBody(Body):
    """A user's new role."""

    role: Role
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "admin"}]})


class FirstLogin(BaseModel):
    """Where the generated first admin password is, while it is still in use."""

    initial_password_file: str | None
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"initial_password_file": "/home/pi/voltbus/var/api/initial-admin-password"}]})


class NewToken(Body):
    """An API token to create for a script."""

    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.VIEWER
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "grafana", "role": "viewer"}]})


class TokenOut(BaseModel):
    """An API token; `token` is only present in the answer that created it."""

    id: int
    name: str
    role: Role
    token: str | None = None
    created_at: datetime | None = None
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 3, "name": "grafana", "role": "viewer", "token": "vb_Zk1…",
         "created_at": None}]})


@router.post("/auth/login", response_model=LoginAnswer, responses=error_responses(401, 422, 429))
async def login(ctx: ContextDep, body: LoginBody, request: Request,
                response: Response) -> LoginAnswer:
    """Log in; repeated failures from one client address answer 429, for longer each time.

    Limited per address, not per user name, so nobody can lock the real admin out.
    """
    client = client_key(request.client.host if request.client else None)
    wait = ctx.limiter.retry_after(client)
    if wait is not None:
        raise _too_many(wait)
    role = await asyncio.to_thread(ctx.auth.check_password, body.username, body.password)
    if role is None:
        ctx.limiter.failed(client)
        raise ApiError(401, "wrong user name or password")
    ctx.limiter.succeeded(client)
    token, expires = ctx.auth.create_session(body.username, role)
    response.set_cookie(SESSION_COOKIE, token, max_age=ctx.settings.api_session_ttl_s,
                        httponly=True, samesite="strict", path="/",
                        secure=_secure_cookie(ctx.settings.api_cookie_secure, request))
    return LoginAnswer(token=token, username=body.username, role=role,
                       expires_at=datetime.fromtimestamp(expires, UTC))


def _secure_cookie(setting: bool | None, request: Request) -> bool:
    """The setting, or else whether this request came over TLS (never sent back over http)."""
    return request.url.scheme == "https" if setting is None else setting


def _too_many(wait: float) -> ApiError:
    seconds = int(wait) + 1
    return ApiError(429, f"too many failed logins from this address; try again in {seconds} s",
                    headers={"Retry-After": str(seconds)})


@router.post("/auth/logout", status_code=204, responses=error_responses(401))
async def logout(ctx: ContextDep, principal: PrincipalDep, token: TokenDep, request: Request,
                 response: Response) -> None:
    """End this login session (API tokens are revoked with DELETE /tokens/{id})."""
    if principal.kind == "session" and token:
        ctx.auth.revoke_secret(token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure_cookie(ctx.settings.api_cookie_secure, request))


@router.get("/auth/first-login", response_model=FirstLogin)
async def first_login(ctx: ContextDep) -> FirstLogin:
    """Open: the path of the generated admin password file (for the login page's hint), null
    once the admin has chosen a password."""
    path = ctx.settings.api_dir / INITIAL_PASSWORD_FILE
    return FirstLogin(initial_password_file=str(path.resolve()) if path.exists() else None)


@router.get("/auth/me", response_model=Me, responses=error_responses(401))
async def me(principal: PrincipalDep) -> Me:
    """Who you are logged in as."""
    return Me(name=principal.name, role=principal.role, kind=principal.kind)


@router.put("/auth/password", status_code=204, responses=error_responses(401, 403, 422))
async def change_password(ctx: ContextDep, principal: PrincipalDep, token: TokenDep,
                          body: PasswordBody) -> None:
    """Change your own password: your other sessions end, the one asking stays valid."""
    if principal.kind != "session":
        raise ApiError(403, "an API token has no password; log in as the user")
    role = await asyncio.to_thread(ctx.auth.check_password, principal.name, body.current_password)
    if role is None:
        raise ApiError(403, "the current password is wrong")
    await asyncio.to_thread(ctx.auth.set_password, principal.name, body.new_password, token)
    if principal.name == ADMIN_USER:  # the generated password is gone: so goes its file
        (ctx.settings.api_dir / INITIAL_PASSWORD_FILE).unlink(missing_ok=True)


@router.get("/users", response_model=list[UserOut], responses=error_responses(401, 403))
async def users(ctx: ContextDep, _: AdminDep) -> list[UserOut]:
    """Every user."""
    return [UserOut(username=n, role=r) for n, r in ctx.auth.users()]


@router.post("/users", response_model=UserOut, status_code=201,
             responses=error_responses(401, 403, 409, 422))
async def add_user(ctx: ContextDep, _: AdminDep, body: NewUser) -> UserOut:
    """Create a user."""
    if not await asyncio.to_thread(ctx.auth.add_user, body.username, body.password, body.role):
        raise ApiError(409, f"user {body.username!r} exists already")
    return UserOut(username=body.username, role=body.role)


@router.delete("/users/{username}", status_code=204,
               responses=error_responses(401, 403, 404, 409))
async def delete_user(ctx: ContextDep, admin: AdminDep, username: Annotated[str, Path()]) -> None:
    """Delete a user (not yourself, not the last admin)."""
    if admin.kind == "session" and admin.name == username:
        raise ApiError(409, "you cannot delete yourself")
    if ctx.auth.role_of(username) is Role.ADMIN and ctx.auth.admins() <= 1:
        raise ApiError(409, f"{username!r} is the last admin")
    if not ctx.auth.delete_user(username):
        raise ApiError(404, f"no user {username!r}")


@router.put("/users/{username}/role", response_model=UserOut,
            responses=error_responses(401, 403, 404, 409, 422))
async def change_role(ctx: ContextDep, admin: AdminDep, username: Annotated[str, Path()],
                      body: RoleBody) -> UserOut:
    """Change a user's role (not your own, never the last admin's); ends their sessions."""
    current = ctx.auth.role_of(username)
    if current is None:
        raise ApiError(404, f"no user {username!r}")
    if admin.kind == "session" and admin.name == username and body.role is not current:
        raise ApiError(409, "you cannot change your own role")
    if current is Role.ADMIN and body.role is not Role.ADMIN and ctx.auth.admins() <= 1:
        raise ApiError(409, f"{username!r} is the last admin")
    if body.role is not current:
        ctx.auth.set_role(username, body.role)
    return UserOut(username=username, role=body.role)


@router.get("/tokens", response_model=list[TokenOut], responses=error_responses(401, 403))
async def tokens(ctx: ContextDep, _: AdminDep) -> list[TokenOut]:
    """Every API token (without secrets)."""
    return [TokenOut(id=i, name=n, role=r, created_at=datetime.fromtimestamp(c, UTC))
            for i, n, r, c in ctx.auth.api_tokens()]


@router.post("/tokens", response_model=TokenOut, status_code=201,
             responses=error_responses(401, 403, 422))
async def add_token(ctx: ContextDep, _: AdminDep, body: NewToken) -> TokenOut:
    """Create an API token; its secret is in this answer only."""
    token_id, token = ctx.auth.create_api_token(body.name, body.role)
    return TokenOut(id=token_id, name=body.name, role=body.role, token=token)


@router.delete("/tokens/{token_id}", status_code=204, responses=error_responses(401, 403, 404))
async def delete_token(ctx: ContextDep, _: AdminDep,
                       token_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> None:
    """Revoke an API token."""
    if not ctx.auth.revoke(token_id):
        raise ApiError(404, f"no token {token_id}")
