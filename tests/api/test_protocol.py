"""HTTP-level behaviour: status codes, the error format, body limits, OpenAPI and docs."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from referral_app.infra.api_requests import MAX_BODY_BYTES
from tests.api.conftest import assert_error

CONTRACT = {
    ("post", "/api/v1/auth/request_code/"),
    ("post", "/api/v1/auth/auth_code/"),
    ("post", "/api/v1/auth/logout/"),
    ("get", "/api/v1/profile/me/"),
    ("get", "/api/v1/profile/me/referrals/"),
    ("post", "/api/v1/profile/activate_invite/"),
    ("get", "/api/v1/health/"),
}


def test_openapi_document_is_valid_and_lists_every_route(client):
    document = client.get("/api/openapi.json").json()
    validate(document)
    listed = {(method, path) for path, item in document["paths"].items() for method in item}
    assert listed == CONTRACT


def test_openapi_documents_errors_and_examples(client):
    document = client.get("/api/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "200" in codes or "204" in codes, (method, path)
            if method == "post" and "logout" not in path:
                assert {"400", "413", "415"} <= codes, (method, path)
            if "/profile/" in path or "logout" in path:
                assert "401" in codes and operation.get("security"), (method, path)
    schemas = document["components"]["schemas"]
    assert {"ErrorOut", "ProfileOut", "RequestCodeIn"} <= set(schemas)
    assert schemas["RequestCodeIn"].get("examples")


def test_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/api/static-docs/swagger-ui-bundle.js" in page.text
    assert client.get("/api/static-docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/static-docs/swagger-ui.css").status_code == 200


def test_unknown_route_is_a_json_404(client):
    assert_error(client.get("/api/v1/nothing/here/"), 404, "request.not_found")
    assert_error(client.post("/api/nope", json={}), 404, "request.not_found")


def test_wrong_method_is_a_405_with_allow(client):
    response = client.get("/api/v1/auth/request_code/")
    assert_error(response, 405, "request.method_not_allowed")
    assert response.headers["Allow"] == "POST"
    assert client.delete("/api/v1/profile/me/").status_code == 405


def test_malformed_json_is_a_400(client):
    response = client.post("/api/v1/auth/request_code/", content=b'{"phone_number": ', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "request.invalid_json")


@pytest.mark.parametrize("body", [b"[]", b'"+79123456789"', b"null", b"42", b""])
def test_body_that_is_not_an_object_is_a_400(client, body):
    response = client.post("/api/v1/auth/request_code/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] in {"request.body_not_object", "request.field_missing"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_body_that_is_not_json_is_a_415(client, content_type):
    response = client.post("/api/v1/auth/request_code/", content=b"phone_number=+79123456789", headers={"Content-Type": content_type})
    assert_error(response, 415, "request.not_json")


def test_json_with_charset_is_accepted(client):
    response = client.post(
        "/api/v1/auth/request_code/", content=b'{"phone_number": "+79123456789"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 200


def test_body_over_16_kb_is_a_413(client):
    big = b'{"phone_number": "' + b"1" * MAX_BODY_BYTES + b'"}'
    assert_error(client.post("/api/v1/auth/request_code/", content=big, headers={"Content-Type": "application/json"}), 413, "request.too_large")


def test_chunked_body_over_16_kb_is_a_413(client):
    def chunks():
        for _ in range(20):
            yield b"1" * 1024

    response = client.post("/api/v1/auth/request_code/", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "request.too_large")


def test_openapi_documents_400_not_fastapis_422(client):
    document = client.get("/api/openapi.json").json()
    for item in document["paths"].values():
        for operation in item.values():
            assert "422" not in operation["responses"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
