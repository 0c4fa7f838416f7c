"""The rules of the referral system, in plain Python (no Reflex, no FastAPI).

Every public function takes a SQLModel ``Session`` and commits its own unit of work.
"""
