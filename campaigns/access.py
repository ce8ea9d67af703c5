"""Who is asking, and what they may see: the signed-in user as an `Actor`, their role, and the organisation
subtree that filters every query.

The web layer finds the actor of a request (scheduler/web/auth.py: session cookie or bearer token, CSRF);
here is only what the domain asks of it. Scope filters come from the actor: `actor.org_ids()` is a subquery of
the organisations in the user's subtree, to be used in `where(X.organisation_id.in_(actor.org_ids()))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from campaigns.kinds import Role
from campaigns.models import Organisation, User
from signage.errors import NotAllowed, NotFound


@dataclass
class Actor:
    user: User
    org_path: str
    via: str  # "session" or "token"
    csrf_token: str | None = None

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    def org_ids(self) -> Select:
        """The ids of the organisations in the user's subtree, as a subquery for `in_()`."""
        return subtree_ids(self.org_path)

    def sees_organisation(self, session: Session, organisation_id: str | None) -> bool:
        if organisation_id is None:
            return False
        path = session.scalar(select(Organisation.path).where(Organisation.id == organisation_id))
        return path is not None and path.startswith(self.org_path)

    def has_role(self, *roles: Role) -> bool:
        return self.user.role is Role.admin or self.user.role in roles

    def require(self, *roles: Role, to: str) -> None:
        """NotAllowed unless the user has one of `roles` (admins may do everything within their subtree)."""
        if not self.has_role(*roles):
            names = " or ".join(role.value for role in roles)
            raise NotAllowed(f"your role ({self.user.role.value}) may not {to}", f"it takes a {names} account")


@lru_cache(maxsize=4096)
def subtree_ids(org_path: str) -> Select:
    """The ids of the organisations in the subtree at `org_path`, as a subquery. Made once per path: SQLAlchemy's
    statements are immutable, and building one costs more than running it (bench/list_routes.py)."""
    return select(Organisation.id).where(Organisation.path.startswith(org_path, autoescape=True))


def not_found(kind: str, ref: str) -> NotFound:
    """The same answer for 'does not exist' and 'not yours': another unit's data is not even acknowledged."""
    return NotFound(kind, ref)
