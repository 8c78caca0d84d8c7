"""Secret redaction: everything cvbench writes or shows passes through `redact` (or `scrub`, for
error text), which removes the values of environment (and `.env`) variables whose names look
secret, credentials inside URLs and header options, token-shaped strings, and dict keys named like
secrets, so no API key reaches a run directory, a log or a report.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cvbench.core.secrets import read_dotenv, seen_secrets

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
REDACTED = "***"
_MIN_SECRET_LEN = 4  # shorter values would redact ordinary words
# flags whose value is a secret even when it is not in the environment (e.g. --api-key sk-...)
_SECRET_FLAG = re.compile(r"^--?[\w-]*(?:key|token|secret|password)[\w-]*$", re.IGNORECASE)
_INLINE_SECRETS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(\b(?:api[_-]?key|access[_-]?token|token|key|password|secret)=)[^&\s\"']+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"),
)
# a URL in any text: userinfo (user:password@) and credential-named query values are removed
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s\"'<>]+)")
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")
# query parameter names whose value is a credential beyond the key/token/secret words
_QUERY_SECRET_WORDS = {
    "sig",
    "signature",
    "pwd",
    "pass",
    "passphrase",
    "session",
    "sessionid",
    "code",
    "jwt",
    "bearer",
    "cred",
    "creds",
    "private",
}
# option keys whose values are HTTP headers (every value may be a credential: names are kept)
_HEADER_KEY = re.compile(r"(?i)headers?$")


def is_secret_name(name: str) -> bool:
    """An environment variable name that holds a secret (OPENAI_API_KEY, HF_TOKEN, DB_PASSWORD...)."""
    return bool(SECRET_NAME.search(name))


_SECRET_WORDS = {
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "credentials",
    "authorization",
    "auth",
}


def is_secret_key(name: str) -> bool:
    """A dict key that names a secret: one of its words is key/token/secret/password/...

    Word-based so that counters such as `max_tokens` or `input_tokens` are kept."""
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)
    return any(w.lower() in _SECRET_WORDS for w in words)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking variables in the environment and in `./.env`, longest first."""
    env = dict(os.environ if environ is None else environ)
    if environ is None:
        with contextlib.suppress(Exception):  # an unreadable .env must not stop redaction of the environment
            env.update({k: v for k, v in read_dotenv().items() if k not in env})
    values = {v for k, v in env.items() if is_secret_name(k) and v and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact(value: Any, secrets: Sequence[str] | None = None) -> Any:
    """A copy of `value` (str, dict, list, tuple, scalars) with secrets removed.

    Strings lose every secret value and bearer/`api_key=`-shaped tokens; dicts lose keys whose
    names look secret (KEY, TOKEN, SECRET, PASSWORD...). Other scalars pass through.
    """
    known = secret_values() if secrets is None else list(secrets)
    return _redact(value, known)


def redact_url_credentials(text: str) -> str:
    """Every URL in `text` without its userinfo (`http://***@host`) or the values of query
    parameters named like credentials (`?api_key=***`, `&sig=***`)."""
    return _URL.sub(_redact_one_url, text)


def _redact_one_url(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    authority_end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if 0 <= at < authority_end:
            authority_end = at
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = REDACTED + "@" + authority.rsplit("@", 1)[1]
    elif "@" in tail.split("?", 1)[0].split("#", 1)[0]:  # an unescaped '/' in a password: the first '@' ends it
        path = tail.split("?", 1)[0].split("#", 1)[0]
        authority, tail = REDACTED + "@" + path.rsplit("@", 1)[1], tail[len(path) :]
    return scheme + authority + _QUERY_PARAM.sub(_redact_query_param, tail)


def _redact_query_param(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    if value and _is_query_secret(name):
        value = REDACTED
    return f"{sep}{name}={value}"


def _is_query_secret(name: str) -> bool:
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)]
    return is_secret_key(name) or is_secret_name(name) or any(w in _QUERY_SECRET_WORDS for w in words)


def redact_headers(value: Any) -> Any:
    """Header options (`extra_headers`, `default_headers`...): names kept, every value removed."""
    if isinstance(value, Mapping):
        return dict.fromkeys(value, REDACTED)
    if isinstance(value, (list, tuple)):
        return [REDACTED for _ in value]
    return REDACTED if value not in (None, "") else value


def _redact(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        out = value
        for s in secrets:
            out = out.replace(s, REDACTED)
        for pattern in _INLINE_SECRETS:
            out = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, out)
        if "://" in out:
            out = redact_url_credentials(out)
        if "=" in out:  # a bare request path echoed back (`POST /v1?sig=...`) has no scheme
            out = _QUERY_PARAM.sub(_redact_query_param, out)
        return out
    if isinstance(value, Mapping):
        return {
            k: (redact_headers(v) if isinstance(k, str) and _HEADER_KEY.search(k) else _redact(v, secrets))
            for k, v in value.items()
            if not (isinstance(k, str) and is_secret_key(k))
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v, secrets) for v in value]
    return value


def redact_argv(argv: Sequence[str], secrets: Sequence[str] | None = None) -> list[str]:
    """A command line with secret values and the values of secret-looking flags removed."""
    known = secret_values() if secrets is None else list(secrets)
    out: list[str] = []
    hide_next = hide_option_value = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if hide_option_value:
            hide_option_value = False
            out.append(_redact_model_option(arg, known))
            continue
        flag, eq, _ = arg.partition("=")
        if flag == "--model-option":
            if eq:
                out.append(f"{flag}={_redact_model_option(arg[len(flag) + 1 :], known)}")
            else:
                out.append(arg)
                hide_option_value = True
            continue
        if _SECRET_FLAG.match(flag):
            if eq:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(_redact(arg, known))
    return out


def _redact_model_option(item: str, secrets: Sequence[str]) -> str:
    """`--model-option KEY=VALUE` as recorded: header and secret-named options lose their value."""
    key, eq, _ = item.partition("=")
    if eq and (_HEADER_KEY.search(key.strip()) or is_secret_key(key.strip())):
        return f"{key}={REDACTED}"
    return str(_redact(item, secrets))


_TOKEN_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|key|x-api-key|x-goog-api-key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{8,}"
    ),
    re.compile(r"\b(sk-(?:ant-)?)[A-Za-z0-9_-]{8,}"),
    re.compile(r"\b(AIza)[A-Za-z0-9_-]{20,}"),
)


def scrub(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """Remove every key this process has read, and token-shaped strings, from `text`."""
    for value in sorted(seen_secrets() | {s for s in extra_secrets if s}, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    try:
        redacted = redact(text)
    except Exception:
        redacted = text
    return redacted if isinstance(redacted, str) else text
