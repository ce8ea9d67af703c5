"""The JSON API fuzzed from its own /openapi.json (schemathesis, in process over ASGI): whatever a signed-in user
sends, valid or not, the answer is never a server error.

Each operation gets the schema's examples, its boundary cases (the coverage phase) and a bounded number of
generated requests, valid and invalid, the same ones on every run, so a failure here is reproducible.
"""

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import select

from campaigns.accounts import issue_api_token
from campaigns.models import User
from signage.db import transaction

pytestmark = pytest.mark.security

# Per operation and run: enough to reach past validation into the routes, few enough that this file's three
# runs stay within about three minutes on two cores.
EXAMPLES_PER_OPERATION = 10
# The coverage phase sends every boundary value the schema allows (the longest name, the largest id...), where
# servers break; the invalid inputs it would add are FastAPI's own 422s, and the fuzzing phase sends some anyway.
# Fixed seed, no example database: every run sends the same requests.
CONFIG = SchemathesisConfig.from_dict({
    "seed": 2024,
    "phases": {"coverage": {"generation": {"mode": "positive"}, "unexpected-methods": []}},
})
FUZZ = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture
def openapi(app) -> Iterator[schemathesis.BaseSchema]:
    """The app's schema; schemathesis runs the app's lifespan (the database opened) until the test ends."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    try:
        yield schema
    finally:
        shutdown_lifespans()


@pytest.fixture
def bearer(app) -> Callable[[str], dict[str, str]]:
    """bearer('city-admin') -> an Authorization header with a new token of that user. A new one per request,
    because the generated requests include revoking one's own tokens."""

    def header(username: str) -> dict[str, str]:
        with transaction(app.state.database.sessions) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            token, _ = issue_api_token(session, user, "schemathesis", app.state.clock, days=1)
        return {"Authorization": f"Bearer {token}"}

    return header


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis (4.32) renames the test node through `_nodeid`, which pytest 9.2 no longer has: giving it the
    # attribute back lets it name each operation in the report, and changes nothing else.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


api = schemathesis.pytest.from_fixture("openapi")


@api.parametrize()
@FUZZ
def test_no_request_of_a_city_admin_gets_a_server_error(case, bearer):
    case.call_and_validate(headers=bearer("city-admin"), checks=[not_a_server_error])


# Once, on SQLite: the ward's run is for the scope checks, which the databases do not change; what they do
# change (ids, lengths, numbers past a column's range) the city admin's run meets on both.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@api.parametrize()
@FUZZ
def test_no_request_of_a_wards_staff_gets_a_server_error(case, bearer):
    case.call_and_validate(headers=bearer("phula-staff"), checks=[not_a_server_error])
