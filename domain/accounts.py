"""Account lifecycle rules without I/O: one-time codes and the mail that carries them."""

from __future__ import annotations

import secrets

VERIFY = "verify"
RESET = "reset"
CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def verification_mail(code: str, minutes: int) -> tuple[str, str]:
    return (
        "Your agora verification code",
        f"Your verification code is {code}.\n\n"
        f"It works for {minutes} minutes. If you did not create an agora account, "
        "ignore this message.\n",
    )


def reset_mail(code: str, minutes: int) -> tuple[str, str]:
    return (
        "Your agora password reset code",
        f"Your password reset code is {code}.\n\n"
        f"It works for {minutes} minutes. Using it signs you out everywhere. If you did "
        "not ask for it, ignore this message: your password is unchanged.\n",
    )
