"""The array literals of the set-based writers come back from PostgreSQL exactly as given."""

import math

import pytest
from django.db import connection

from reviewapp.audit import sqlarray

pytestmark = pytest.mark.django_db


def _back(literal: str, cast: str):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{cast}", [literal])
        return cursor.fetchone()[0]


def test_texts_keep_quotes_backslashes_commas_braces_blanks_nulls_and_unicode():
    values = ["plain", 'with "quotes"', "back\\slash\\", "comma,brace{}", " spaced ", "", "NULL", None,
              "ünïcødé 🚀", "new\nline\ttab", "'single'"]
    assert _back(sqlarray.texts(values), "text[]") == values


def test_ints_and_floats_keep_their_values():
    assert _back(sqlarray.ints([0, -1, 2**63 - 1, None]), "bigint[]") == [0, -1, 2**63 - 1, None]
    floats = [0.1, 1e-300, -2.5e300, 1 / 3, float("inf"), float("-inf"), None]
    assert _back(sqlarray.floats(floats), "float8[]") == floats
    assert math.isnan(_back(sqlarray.floats([float("nan")]), "float8[]")[0])
    assert _back(sqlarray.ints([]), "bigint[]") == [] and _back(sqlarray.texts([]), "text[]") == []
