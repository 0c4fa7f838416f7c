"""Referral system: phone sign-in, invite codes and referral lists (Reflex + FastAPI)."""
