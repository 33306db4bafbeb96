"""DHCP identification: what the phone says about itself, judged from the transcript.

Pure logic (issue 16 item 7). Every DISCOVER and REQUEST the phone sent in a case must
carry its model name in Option 60 (vendor class) and Option 77 (user class, encoded per
the switch ``option77_encoding``) and ask in Option 55 for 66, 67 and the URL option
(160, or ``provisioning/url_option_value``). Each check is an assertion with its ground
(framework.resolution.grounds.identification_assertions); :func:`with_identification`
folds the outcome into a case's :class:`~framework.runner.verdict.Judgement`.

Example::

    checks = judge_identification(transcript_messages, model="440HD", url_option=160,
                                  interp=profile.interpretation)
    judgement = with_identification(judgement, checks)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from framework.dhcp.options import decode_parameter_list, decode_text, decode_user_class
from framework.resolution import Interpretation, identification_assertions
from framework.runner.verdict import Judgement, Verdict

CLIENT_MESSAGES = ("DISCOVER", "REQUEST")


class ClientMessage(Protocol):
    """What a transcript record (framework.dhcp.transcript.DhcpMessageRecord) offers."""

    @property
    def message_type(self) -> str: ...

    @property
    def options(self) -> Mapping[int, bytes]: ...


@dataclass(frozen=True)
class IdentificationResult:
    """Each identification assertion with its outcome, and the failures it found."""

    assertions: tuple[dict[str, Any], ...]
    judged_failures: tuple[str, ...]
    observed_failures: tuple[str, ...]
    messages: int


def _has_model(text: str, model: str) -> bool:
    return model.lower() in text.lower()


def _option77(value: bytes, model: str, encoding: str) -> str | None:
    """Why Option 77 does not carry ``model`` in ``encoding``, or None when it does."""
    user_class = decode_user_class(value)
    if encoding == "rfc3004" and not user_class.length_prefixed:
        return (f"Option 77 {decode_text(value)!r} is not RFC 3004 length-prefixed (switch "
                "option77_encoding=rfc3004)")
    if encoding == "raw" and user_class.length_prefixed:
        return (f"Option 77 is RFC 3004 length-prefixed ({', '.join(user_class.classes)!r}), "
                "not raw (switch option77_encoding=raw)")
    names = user_class.classes if user_class.length_prefixed else (decode_text(value),)
    if not any(_has_model(n, model) for n in names):
        return f"Option 77 {', '.join(names)!r} does not name the model {model}"
    return None


def _check(options: Mapping[int, bytes], kind: str, *, model: str, url_option: int,
           interp: Interpretation) -> str | None:
    if kind == "identification/60":
        value = options.get(60)
        if value is None:
            return "no Option 60"
        text = decode_text(value)
        return None if _has_model(text, model) else \
            f"Option 60 {text!r} does not name the model {model}"
    if kind == "identification/77":
        value = options.get(77)
        if value is None:
            return "no Option 77"
        return _option77(value, model, interp.option77_encoding)
    value = options.get(55)
    asked = decode_parameter_list(value) if value is not None else ()
    missing = [c for c in (66, 67, url_option) if c not in asked]
    if not missing:
        return None
    return (f"Option 55 ({', '.join(map(str, asked)) or 'absent'}) does not ask for "
            f"{', '.join(map(str, missing))}")


def judge_identification(messages: Sequence[ClientMessage], *, model: str, url_option: int,
                         interp: Interpretation) -> IdentificationResult:
    """Check every DISCOVER and REQUEST in ``messages`` (the phone's, within the case).

    No client message (a cycle whose DHCP the lab did not see): every assertion holds
    vacuously and the detail says so; nothing to judge by is not a failure of the phone.
    """
    sent = [m for m in messages if m.message_type in CLIENT_MESSAGES]
    results = []
    judged: list[str] = []
    observed: list[str] = []
    for a in identification_assertions(model, url_option, interp):
        faults = list(dict.fromkeys(
            f"{m.message_type}: {why}" for m in sent
            if (why := _check(m.options, a.id, model=model, url_option=url_option,
                              interp=interp)) is not None))
        detail = "; ".join(faults) if faults else (
            "" if sent else "no DISCOVER or REQUEST seen: nothing to judge by")
        results.append({**a.to_dict(), "holds": not faults, "detail": detail})
        (judged if a.judged else observed).extend(faults)
    return IdentificationResult(tuple(results), tuple(judged), tuple(observed), len(sent))


def with_identification(judgement: Judgement, ident: IdentificationResult) -> Judgement:
    """The case's judgement with the identification assertions added: a judged one that
    does not hold fails the case whatever its provisioning verdict (a broken or skipped
    case stays so); an observed one is said in the reason."""
    assertions = (*judgement.assertions, *ident.assertions)
    diffs = (*judgement.differences, *ident.judged_failures, *ident.observed_failures)
    matches = judgement.matches and not ident.judged_failures and not ident.observed_failures
    reason = judgement.reason
    verdict = judgement.verdict
    if ident.judged_failures and verdict in (Verdict.PASSED, Verdict.FAILED, Verdict.OBSERVED):
        said = "DHCP identification: " + "; ".join(ident.judged_failures)
        reason = said if verdict is Verdict.PASSED else f"{reason}; {said}"
        verdict = Verdict.FAILED
    if ident.observed_failures:
        reason += "; DHCP identification, observed, not judged: " + "; ".join(
            ident.observed_failures)
    return replace(judgement, verdict=verdict, reason=reason, differences=diffs,
                   matches=matches, assertions=assertions)
