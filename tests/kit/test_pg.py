"""kit.pg's array literals: what PostgreSQL reads back is the list that was sent."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from distnet.kit import pg

# any text PostgreSQL can hold (no NUL; no lone surrogate, which UTF-8 cannot carry and a JSON body
# cannot bring: msgspec refuses it), with the characters an array literal treats specially
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
) | st.sampled_from(['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "null", "", "ü", "i'j", '\\"', "}{", "\t"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_TEXT, max_size=20))
async def test_text_array_reads_back_as_sent(session, values):
    back = await pg.fetch(session, text("SELECT CAST(:a AS text[]) AS a"), {"a": pg.text_array(values)})
    assert back[0].a == values


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=20))
async def test_int_array_reads_back_as_sent(session, values):
    back = await pg.fetch(session, text("SELECT CAST(:a AS bigint[]) AS a"), {"a": pg.int_array(values)})
    assert back[0].a == values


async def test_card_numbers_with_array_syntax_are_looked_up_as_text(session):
    """A batch's card numbers travel as one literal: a number made of array syntax finds no card
    and does not break the lookup of the others."""
    from distnet.orders import repository as repo

    found = await repo.cards_for_sale(session, ['1","2', "{3}", "NULL", "\\"])
    assert found == {}
