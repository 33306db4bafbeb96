"""The phone driver's errors: what failed, and the latch that keeps a broken phone broken.

In their own module because both halves of the driver raise them: framework.phone.shell
(console, login, boot) and framework.phone.driver (identity, restarts, check-sync).
"""

from __future__ import annotations

from datetime import datetime

from framework.errors import HilError


class PhoneError(HilError, RuntimeError):
    """The phone did not do what the driver asked (it did not boot, refused the login...)."""


class IdentityMismatch(PhoneError):
    """``/etc/release`` does not match the rig (wrong phone on this outlet or console?)."""


class PhoneBroken(PhoneError):
    """The phone could not be brought to a known state; it stays broken for this run."""

    def __init__(self, phone: str, reason: str, since: datetime | None = None,
                 cause: BaseException | None = None) -> None:
        self.phone, self.reason, self.cause = phone, reason, cause
        self.since = since or datetime.now().astimezone()
        again = f" since {self.since:%H:%M:%S} (not retried)" if since else ""
        super().__init__(f"phone {phone} is broken{again}: {reason}")
