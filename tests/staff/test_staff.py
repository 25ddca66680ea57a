"""Staff are people: keys belong to a person, four eyes and conflict-of-interest checks compare
people (one person holding two keys cannot approve their own run or decide an appeal against
their own hold), and the audit log names the person."""

from __future__ import annotations

import pytest

from distnet.kit.errors import ValidationFailed
from distnet.staff import service
from distnet.staff.errors import StaffNameTaken
from tests.factories import auth, register


async def _person(sessionmaker, name: str, *key_roles: list[str]) -> list[str]:
    async with sessionmaker() as s:
        staff = await service.create_staff(s, name=name)
        keys = [(await service.add_key(s, staff=staff, roles=roles))[1] for roles in key_roles]
        await s.commit()
    return [f"Bearer {k}" for k in keys]


def test_one_person_with_two_keys_is_one_person_for_four_eyes():
    from distnet.kit.auth import Principal

    creator = Principal(1, "Li Na", frozenset({"finance"}), None, 7)
    same_person_other_key = Principal(2, "Li Na", frozenset({"finance_approver"}), None, 7)
    someone_else = Principal(3, "Chen Jie", frozenset({"finance_approver"}), None, 8)
    assert same_person_other_key.is_person(creator.actor) and creator.actor == "staff:7:Li Na"
    assert not someone_else.is_person(creator.actor)
    assert not Principal(4, "ops", frozenset({"admin"})).is_person("key:1:ops")


async def test_a_person_cannot_decide_the_appeal_of_their_own_hold_with_another_key(
    client, admin_headers, sessionmaker
):
    key_a, key_b = await _person(sessionmaker, "Zhou", ["risk_reviewer"], ["risk_reviewer"])
    root = await register(client, admin_headers, name="root")
    d = await register(client, sponsor=root, name="d")
    hold = await client.post(
        f"/api/v1/cards/{d['card']['number']}/holds",
        json={"reason": "manual"},
        headers={"Authorization": key_a},
    )
    aid = (
        await client.post(
            "/api/v1/appeals", json={"hold_id": hold.json()["id"], "statement": "why"}, headers=auth(d)
        )
    ).json()["id"]
    r = await client.post(f"/api/v1/appeals/{aid}/claim", headers={"Authorization": key_b})
    assert r.status_code == 403 and r.json()["code"] == "reviewer-placed-hold", r.text
    # a claim made with one key is the person's claim with the other key too
    sun_a, sun_b = await _person(sessionmaker, "Sun", ["risk_reviewer"], ["risk_reviewer"])
    (someone,) = await _person(sessionmaker, "Someone", ["risk_reviewer"])
    assert (
        await client.post(f"/api/v1/appeals/{aid}/claim", headers={"Authorization": sun_a})
    ).status_code == 200
    assert (
        await client.post(f"/api/v1/appeals/{aid}/claim", headers={"Authorization": someone})
    ).status_code == 409
    decided = await client.post(
        f"/api/v1/appeals/{aid}/decision", json={"decision": "approve"}, headers={"Authorization": sun_b}
    )
    assert decided.status_code == 200 and decided.json()["decided_by"].endswith(":Sun")


async def test_names_are_unique_roles_are_staff_roles_and_disabled_people_lose_every_key(
    client, sessionmaker
):
    (key,) = await _person(sessionmaker, "Ma", ["risk_admin"])
    async with sessionmaker() as s:
        with pytest.raises(StaffNameTaken):
            await service.create_staff(s, name="Ma")
        staff = await service.find_staff(s, who="Ma")
        with pytest.raises(ValidationFailed):
            await service.add_key(s, staff=staff, roles=["distributor"])
        assert [(m.name, m.keys) for m in await service.list_staff(s)] == [("Ma", 1)]
    assert (await client.get("/api/v1/risk/rules", headers={"Authorization": key})).status_code == 200
    async with sessionmaker() as s:
        await service.disable_staff(s, staff=await service.find_staff(s, who="Ma"))
        await s.commit()
    from distnet.kit import auth as kit_auth

    kit_auth._principal_cache.clear()
    assert (await client.get("/api/v1/risk/rules", headers={"Authorization": key})).status_code == 401
