"""The Alembic migrations build exactly the schema the models describe, from an empty database."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

import referral_app.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from referral_app.infra.db import make_engine
from referral_app.settings import settings
from tests.conftest import ROOT, create_test_database, migrate
from tests.domain.helpers import T0


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def check_constraints(engine) -> dict[str, set[str]]:
    inspector = inspect(engine)
    return {table: {ck["name"] for ck in inspector.get_check_constraints(table)} for table in SQLModel.metadata.tables}


def model_check_constraints() -> dict[str, set[str]]:
    from sqlalchemy import CheckConstraint

    return {
        name: {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        for name, table in SQLModel.metadata.tables.items()
    }


@pytest.fixture
def fresh_database():
    """An empty database of the configured kind; dropped at the end of the run."""
    url = create_test_database(f"migrations_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


def test_migrated_test_database_matches_the_models(engine):
    # Nothing is ignored: the comparison covers tables, columns, types, nullability,
    # indexes, unique constraints and foreign keys.
    assert schema_differences(engine) == []


def test_check_constraints_match_the_models(engine):
    # Autogenerate does not compare CHECK constraints, so they are checked here by name.
    assert check_constraints(engine) == model_check_constraints()


def test_migrations_build_the_schema_from_an_empty_database(fresh_database):
    url, engine = fresh_database
    assert inspect(engine).get_table_names() == []
    assert schema_differences(engine) != []  # the comparison does see a missing schema
    migrate(url)
    assert set(inspect(engine).get_table_names()) == set(SQLModel.metadata.tables) | {"alembic_version"}
    assert schema_differences(engine) == []
    assert check_constraints(engine) == model_check_constraints()


def test_migrations_go_down_and_up_again(fresh_database):
    url, engine = fresh_database
    migrate(url)
    previous = settings.database_url
    settings.database_url = url
    try:
        command.downgrade(alembic_config(), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(alembic_config(), "head")
    finally:
        settings.database_url = previous
    assert schema_differences(engine) == []


def test_there_is_one_head_and_the_database_is_at_it(engine):
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == script.get_current_head()


# --- constraints back the rules that could be raced ----------------------------------------


def _insert_user(conn, user_id: int, phone: str, code: str, **extra) -> None:
    values = {"id": user_id, "phone_number": phone, "invite_code": code, "invited_count": 0, "created_at": T0}
    values.update(extra)
    columns = ", ".join(values)
    conn.execute(text(f"INSERT INTO users ({columns}) VALUES ({', '.join(':' + k for k in values)})"), values)


@pytest.mark.parametrize(
    "bad_row",
    [
        pytest.param({"phone_number": "+79120000001"}, id="duplicate phone"),
        pytest.param({"invite_code": "AAAAAA"}, id="duplicate invite code"),
        pytest.param({"invited_by_id": 2, "activated_at": T0}, id="self-referral"),
        pytest.param({"invited_by_id": 1}, id="activation without a time"),
        pytest.param({"activated_at": T0}, id="activation time without an inviter"),
        pytest.param({"invited_count": -1}, id="negative count"),
        pytest.param({"invited_by_id": 999, "activated_at": T0}, id="unknown inviter"),
    ],
)
def test_database_constraints_refuse_broken_rows(db, engine, bad_row):
    with engine.connect() as conn:
        _insert_user(conn, 1, "+79120000001", "AAAAAA")
        conn.commit()
        row = {"phone_number": "+79120000002", "invite_code": "BBBBBB"} | bad_row
        with pytest.raises(IntegrityError):
            _insert_user(conn, 2, row.pop("phone_number"), row.pop("invite_code"), **row)
        conn.rollback()
