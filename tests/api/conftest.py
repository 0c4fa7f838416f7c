"""API tests: FastAPI's TestClient against the real app on the test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from referral_app.referral_app import api

PHONE_A, PHONE_B, PHONE_C = "+79123456789", "+79123456780", "+79123456781"
CLIENT_ADDRESS = ("198.51.100.7", 50000)  # TEST-NET-2: the socket peer of every test request


@pytest.fixture
def client(db):
    with TestClient(api, client=CLIENT_ADDRESS) as test_client:
        yield test_client


def sign_in(client: TestClient, phone: str) -> str:
    """Request a code and trade it for a token, through the API."""
    code = client.post("/api/v1/auth/request_code/", json={"phone_number": phone}).json()["confirmation_code"]
    response = client.post("/api/v1/auth/auth_code/", json={"phone_number": phone, "confirmation_code": code})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body.get("field") == field
