"""What happens when someone activates an invitation: one service, every consequence once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from referral_app.domain.errors import AlreadyActivated
from referral_app.infra import wakeups
from referral_app.infra.live import referral_feed
from referral_app.services import auth, profile, referrals

ROOT = Path(__file__).resolve().parents[2] / "referral_app"
INVITER, INVITED = "+79123456789", "+79123456780"


async def _sign_up(phone: str) -> str:
    issued = await auth.request_code(phone, "198.51.100.7")
    return await auth.sign_in(phone, issued.code)


def _activations() -> float:
    return REGISTRY.get_sample_value("referral_invite_activations_total") or 0.0


def test_an_activation_counts_shows_it_live_and_wakes_the_webhook_loop(db):
    async def scenario():
        inviter, invited = await _sign_up(INVITER), await _sign_up(INVITED)
        me = await profile.read_profile(inviter)
        subscription = await referral_feed.subscribe(me.user_id)
        before = _activations()
        with wakeups.waiting() as wakeup:
            owner = await referrals.activate_invitation(invited, me.profile.invite_code.lower())
            await asyncio.wait_for(wakeup.wait(), 1)  # the delivery loops were woken
        assert owner.id == me.user_id
        assert _activations() == before + 1
        assert await asyncio.wait_for(subscription.wait(), 1)  # the inviter's page heard it
        subscription.close()
        assert (await profile.read_profile(inviter)).profile.invited_count == 1
        # A second activation is refused and has no consequence.
        with wakeups.waiting() as wakeup:
            with pytest.raises(AlreadyActivated):
                await referrals.activate_invitation(invited, me.profile.invite_code)
            await asyncio.sleep(0.05)
            assert not wakeup.is_set()
        assert _activations() == before + 1

    asyncio.run(scenario())


def test_the_live_publish_has_one_caller():
    callers = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*.py")
        for line in path.read_text().splitlines()
        if re.search(r"referral_feed\.publish\(", line)
    ]
    assert callers == ["services/subscribers.py"]


def test_no_adapter_opens_a_database_session():
    found = [
        f"{path.relative_to(ROOT).as_posix()}: {line.strip()}"
        for package in ("state", "api", "admin", "pages")
        for path in (ROOT / package).rglob("*.py")
        for line in path.read_text().splitlines()
        if re.search(r"session_scope|read_scope|Session\(", line)
    ]
    assert found == []
