"""API fuzzing: schemathesis generates requests from /api/openapi.json and sends them to the app.

Every operation gets valid and invalid input (bodies, query parameters, headers, other
methods and media types) as a signed-in user, with the send limits on. Each response must
not be a 5xx, must have a status code the document lists for the operation, a documented
content type and headers (``Retry-After`` on a 429), and a body matching the documented
schema. The run is bounded: the schema's examples, schemathesis's coverage cases and
``MAX_EXAMPLES`` generated ones per operation (about 120 requests each, ~750 in all),
in-process on the test database, in well under a minute.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from referral_app.referral_app import api
from referral_app.domain import auth, codes, referrals, sessions
from referral_app.domain.clock import utcnow
from tests.domain.helpers import TEST_IP

MAX_EXAMPLES = 100
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
# The examples in the OpenAPI document, made true in the database so that the fuzzer's
# first requests take the success paths too.
EXAMPLE_PHONE, EXAMPLE_CODE, EXAMPLE_INVITE = "+79123456789", "1234", "7KQ2MX"

schema = schemathesis.openapi.from_asgi("/api/openapi.json", api)


def _sign_up(db, phone_number: str):
    issued = auth.request_code(db, phone_number, TEST_IP)
    return auth.sign_in(db, phone_number, issued.code)


@pytest.fixture
def me(db, send_limits, monkeypatch):
    """A signed-in user with a referral; the documented examples work.

    The user with the example phone has the example invite code (not yet entered by
    ``me``), and the example phone has the example confirmation code waiting.
    """
    inviter = _sign_up(db, "+79120000001")
    user = _sign_up(db, "+79120000002")
    referral = _sign_up(db, "+79120000003")
    referrals.activate_invite(db, referral.id, user.invite_code)
    db.exec(
        text("UPDATE users SET invite_code = :code WHERE id = :id"), params={"code": EXAMPLE_INVITE, "id": inviter.id}
    )
    db.commit()
    with monkeypatch.context() as patch:
        patch.setattr(codes, "generate_code", lambda length=None: EXAMPLE_CODE)
        # A minute ago: past the cooldown, so the example request for it is sent too.
        auth.request_code(db, EXAMPLE_PHONE, TEST_IP, now=utcnow() - timedelta(minutes=1))
    return user


@pytest.fixture
def statuses():
    """The status of every generated request of one operation.

    Afterwards at least one must be a success: a fuzzer stuck at 401 or 400 would pass
    every check while testing nothing behind them.
    """
    seen: list[int] = []
    yield seen
    assert any(200 <= status < 300 for status in seen), f"no request succeeded: {sorted(set(seen))}"


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # no replay of earlier runs' examples: each run draws its own
    suppress_health_check=list(HealthCheck),
)
def test_api_holds_against_generated_requests(case, db, send_limits, me, statuses):
    # Signed in (the public routes ignore it), with a fresh session per request so that a
    # generated logout does not sign out the requests after it. Schemathesis still drops
    # the header in the cases that test a missing Authorization (those must get a 401).
    headers = {"Authorization": f"Bearer {sessions.create_session(db, me.id)}"}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    statuses.append(response.status_code)
