"""Input that can never be valid gets a 4xx with a code that says why: never a 500, never
"try again" (error.unknown), and nothing changes in the database."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import assert_error, sign_in
from tests.domain.helpers import snapshot

ROUTES = ["/api/v1/auth/request_code/", "/api/v1/auth/auth_code/", "/api/v1/profile/activate_invite/"]


def deep(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


CASES = [
    # (body bytes, expected code)
    (deep(1500).encode(), "request.json_too_deep"),
    (('{"phone_number": ' + deep(40, '"+79123456789"') + "}").encode(), "request.json_too_deep"),
    (("{" * 1000).encode(), "request.json_too_deep"),
    (b'{"phone_number": }', "request.invalid_json"),
    (b'{"phone_number": "+79123456789"', "request.invalid_json"),
    (b'{"phone_number": "+79123456789"} trailing', "request.invalid_json"),
    (b"{'phone_number': '+79123456789'}", "request.invalid_json"),
    (b'{"phone_number": NaN}', "request.invalid_json"),
    (b'{"phone_number": Infinity}', "request.invalid_json"),
    (b'{"phone_number": -Infinity}', "request.invalid_json"),
    (b"\xef\xbb\xbf{}", "request.invalid_json"),  # a byte order mark: RFC 8259 says none
    (b'{"phone_number": "\xff\xfe"}', "request.not_utf8"),
    ('{"phone_number": "+79123456789"}'.encode("utf-16"), "request.not_utf8"),
    ('{"phone_number": "+79123456789"}'.encode("utf-32"), "request.not_utf8"),
    (b'{"phone_number": "\\ud800"}', "request.not_utf8"),  # an unpaired surrogate: no text at all
    (b'{"phone_number": "+7912\\udfff3456789"}', "request.not_utf8"),
    (b'{"phone_number": 1e400}', "request.number_out_of_range"),
    (b'{"phone_number": -1e999}', "request.number_out_of_range"),
    (b'{"confirmation_code": ' + b"9" * 5000 + b"}", "request.number_out_of_range"),
    (b'{"confirmation_code": 99999999999999999999}', "request.number_out_of_range"),
    (b'{"invite_code": [' + b"1e999," * 10 + b"1]}", "request.number_out_of_range"),
]


@pytest.mark.parametrize(("body", "code"), CASES, ids=lambda value: repr(value)[:40])
@pytest.mark.parametrize("route", ROUTES)
def test_a_body_that_can_never_be_valid_gets_a_precise_400(client, db, body, code, route):
    token = sign_in(client, "+79123456780") if "profile" in route else None
    before = snapshot(db)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = client.post(route, content=body, headers=headers)
    assert_error(response, 400, code)
    assert "try again" not in response.json()["message"].lower()
    assert snapshot(db) == before


def test_a_fullwidth_plus_is_a_phone_number(client):
    """It was refused as "not a valid phone number", though it is one."""
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": "＋79123456789"})
    assert response.status_code == 200, response.text
    code = response.json()["confirmation_code"]
    signed_in = client.post("/api/v1/auth/auth_code/", json={"phone_number": "+7 912 345-67-89",
                                                             "confirmation_code": code})
    assert signed_in.status_code == 200, signed_in.text


def test_sane_json_is_still_served(client):
    for body in [{"phone_number": "+79123456789"}, {"phone_number": "+79123456789", "extra": [[[1.5, -2, True]]]}]:
        response = client.post("/api/v1/auth/request_code/", content=json.dumps(body),
                               headers={"Content-Type": "application/json; charset=utf-8"})
        assert response.status_code in (200, 429), response.text


def test_no_client_error_says_try_again(client):
    """Every 4xx the API can give names what is wrong; error.unknown is for the server's faults."""
    from referral_app.api.errors import HTTP_ERROR_CODES

    assert "error.unknown" not in HTTP_ERROR_CODES.values()
    response = client.post("/api/v1/auth/request_code/", content=deep(1500), headers={"Content-Type": "application/json"})
    assert response.json()["code"] != "error.unknown"
