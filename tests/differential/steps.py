"""One request of the corpus (a Step) and the helpers the corpus is written with.

A step's path and body may hold `{name}` placeholders, filled per daemon from what earlier
steps captured (ids differ between the daemons) and from the daemon's own values (its subnets,
the run's start time). The step's key, `METHOD /vX.Y/path?query` with the placeholders left
in, is what the report groups by and the allow-list matches."""

import json
import re
import urllib.parse

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}|%7B([a-z_][a-z0-9_]*)%7D")


class Step:
    def __init__(
        self,
        method,
        path,
        body=None,
        *,
        version="1.41",
        raw=None,
        content_type=None,
        headers=None,
        capture=None,
        values=(),
        kind=None,
        hijack=False,
        upgrade=True,
        stdin=None,
        during=None,
        only=None,
        compare=True,
        status_only=False,
        tar_loose=False,
        text_loose=False,
        stream_by=None,
        timeout=60,
        note=None,
    ):
        self.method = method
        self.path = path
        self.body = body
        self.version = version
        self.raw = raw
        self.content_type = content_type
        self.headers = headers or {}
        self.capture = capture or {}
        self.values = tuple(values)
        self.kind = kind
        self.hijack = hijack
        self.upgrade = upgrade
        self.stdin = stdin
        self.during = during
        self.only = only
        self.compare = compare
        self.status_only = status_only
        self.tar_loose = tar_loose
        self.text_loose = text_loose
        self.stream_by = stream_by
        self.timeout = timeout
        self.note = note
        self.group = None  # set by the runner: the spec's path template

    @property
    def prefix(self):
        return f"/v{self.version}" if self.version else ""

    @property
    def key(self):
        return f"{self.method} {self.prefix}{urllib.parse.unquote(self.path)}"

    @property
    def endpoint(self):
        """The endpoint the report groups by: method and path, without version and query."""
        return f"{self.method} {self.path.split('?')[0]}"

    def resolve_path(self, vars):
        return self.prefix + fill(self.path, vars, quote=True)

    def resolve_body(self, vars):
        if self.raw is not None:
            return self.raw(vars) if callable(self.raw) else self.raw
        if self.body is None:
            return None
        if isinstance(self.body, str):
            return fill(self.body, vars).encode()
        return json.dumps(fill_json(self.body, vars)).encode()


def fill(s, vars, quote=False):
    def sub(m):
        name = m.group(1) or m.group(2)
        if name not in vars:
            return m.group(0)
        v = vars[name]
        v = v() if callable(v) else v
        return urllib.parse.quote(str(v), safe=":") if quote and "?" in s[: m.start()] else str(v)

    return PLACEHOLDER.sub(sub, s)


def fill_json(v, vars):
    if isinstance(v, str):
        return fill(v, vars)
    if isinstance(v, list):
        return [fill_json(x, vars) for x in v]
    if isinstance(v, dict):
        return {fill(k, vars): fill_json(x, vars) for k, x in v.items()}
    return v


def q(_path, **params):
    """`path?k=v&…` with values URL-encoded; dicts and lists become JSON (filters, buildargs).
    `{placeholders}` survive the encoding and are filled in per daemon."""
    parts = []
    for k, v in params.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v, separators=(",", ":"))
        elif isinstance(v, bool):
            v = "1" if v else "0"
        enc = urllib.parse.quote(str(v), safe=":,")
        parts.append(f"{k}={enc}")
    return _path + ("?" + "&".join(parts) if parts else "")
