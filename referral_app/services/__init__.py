"""The service layer: one async function per use case, the only door to the domain.

REST routes (``api/``), Reflex handlers (``state/``), staff views (``admin/``), the command
line (``__main__``) and the background loops (``infra/tasks.py``, ``infra/webhooks.py``)
call these functions and nothing below them. Each one opens a unit of work
(``unit_of_work.run`` or ``unit_of_work.read``), runs the domain in a worker thread,
commits, and hands the domain events it committed to the message bus (``bus``), whose
subscribers are listed in one table (``subscribers``). No SQL runs on the event loop.

Modules, one per area: ``auth`` (request a code, sign in, sign out, sessions), ``profile``
(read a profile and pages of referrals, languages), ``referrals`` (activate an invitation,
an invite link's owner), ``staff`` (the staff console: sign-in, user and webhook actions,
the dashboard, exports), ``webhooks`` (the delivery loop's claims and results) and
``maintenance`` (the clean-up).

After "Architecture Patterns with Python" (``cosmicpython/code``: ``service_layer/``) and
Zulip's ``zerver/actions/``.
"""

from referral_app.services import subscribers

subscribers.install()
