"""How a page's Reflex state that the server lost is noticed and rebuilt (Reflex 0.10.1).

Page state lives in Redis (several workers) without persistence: a Redis restart, or the
state's expiry, loses it while the page stays open on its websocket. Reflex then:

* for an event the page sends (it carries the page's route), rehydrates the fresh, routeless
  tree first: ``hydrate``, then the page's ``on_load`` handlers, then the event
  (``BaseStateEventProcessor``: ``needs_to_rehydrate``);
* for a background task that re-enters the state (``async with self``), sends the page the
  fresh tree's defaults and leaves it routeless (``StateProxy.__aenter__``): the page shows
  its defaults (a profile "loading") until it sends an event.

So a background task that finds the tree routeless returns an event to the page
(``SessionState.resume``), which comes back with the route and gets the page rebuilt from
its session cookie and the database. ``tests/faults/test_redis_restart.py`` fails if Reflex
stops behaving so.
"""

from __future__ import annotations

from typing import Any


def state_was_lost(state: Any) -> bool:
    """Whether ``state``'s tree is one Reflex made afresh, with no page route: the page's own
    state was lost while a background task had released it."""
    return not state._get_root_state().router_data
