"""PUT /v1/caps refuses a rule whose window or limit is out of bounds with 422 naming the
field: such a rule would make every offers request fail after its counters were written."""

import pytest
from fastapi.testclient import TestClient

from perkrank.config import MAX_WINDOW_SECONDS
from perkrank.serving.state.memory import MemoryStateStore

ADMIN = {"X-API-Key": "admin-key-for-tests-0001"}
HUGE = 10**20


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"window": HUGE}, "window"),
        ({"window": MAX_WINDOW_SECONDS + 1}, "window"),
        ({"limit": HUGE}, "limit"),
    ],
)
def test_put_caps_refuses_out_of_bounds_rules_with_422_naming_the_field(
    make_small_app, fields, field
):
    client = TestClient(make_small_app(MemoryStateStore()))
    rules = [{"name": "r", "scope": "member_offer", "limit": 1, "window": "day"} | fields]
    response = client.put("/v1/caps", json={"rules": rules}, headers=ADMIN)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])
    assert client.get("/v1/caps", headers=ADMIN).json()["rules"] == []
