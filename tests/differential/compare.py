"""Comparing two answers (berthd's and dockerd's) to the same request, and checking an answer
against the Engine API spec (for the requests dockerd 20.10 is too old to answer).

Differences are short strings, one per finding, in a fixed form the allow-list matches with
globs:

    status berth=204 docker=304
    content-type berth=text/plain docker=application/json
    header-missing api-version          (dockerd sends it, berth does not)
    header-extra x-foo                  (berth sends it, dockerd does not)
    missing .Config.Foo (string)        (in dockerd's JSON, not in berth's)
    extra .Config.Bar (bool)            (in berth's JSON, not in dockerd's)
    missing-null .X (null), extra-null .Y (null)   (the key's value is null on the side that has it)
    type .Warnings berth=array docker=null
    empty .Names[] berth=0 docker=2     (one side's list is empty, the other's not)
    message berth="…" docker="…"        (error messages, ids and the like normalised)
    value .State.Status berth="…" docker="…"
    stdout berth="…" docker="…"         (demultiplexed stream contents)
    tar berth=[…] docker=[…]            (member names of a tar answer)
    spec-status 201                     (berth-only requests: status not documented)
    spec-unknown .Foo                   (a key the spec's schema does not have)
    spec-missing .Bar                   (a required key of the schema berth left out)
    spec-type .X spec=integer berth=string
"""

import json
import re

from wire import NOT_JSON, demux, ndjson, tar_names

HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
HEX12 = re.compile(r"\b[0-9a-f]{12}\b")
TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
IPV4 = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(/\d+)?\b")
# Values that are the daemon's own and never equal: name and version of the server, paths under
# its roots, its bridge.
SERVER = re.compile(r"(Docker/[\w.+~-]+|Berth/[\w.+~-]+)")
# API versions in messages ("Maximum supported API version is 1.41").
APIVER = re.compile(r"\b1\.\d\d\b")


def norm_text(s):
    s = HEX64.sub("<id>", s)
    s = HEX12.sub("<id12>", s)
    s = TIME.sub("<time>", s)
    s = IPV4.sub("<ip>", s)
    s = SERVER.sub("<server>", s)
    s = APIVER.sub("<apiver>", s)
    return s


def norm_key(k):
    if HEX64.fullmatch(k):
        return "<id>"
    if k.startswith("sha256:") and HEX64.fullmatch(k[7:]):
        return "sha256:<id>"
    if IPV4.fullmatch(k):
        return "<ip>"
    return k


def typename(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def merge(a, b):
    """One representative of two list elements: the union of their keys."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if k in out else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return b if a is None else a


def representative(items):
    rep = None
    for it in items:
        rep = it if rep is None else merge(rep, it)
    return rep


def shape_diff(b, d, path=""):
    """Keys and value types of two JSON values."""
    tb, td = typename(b), typename(d)
    if tb != td:
        return [f"type {path or '.'} berth={tb} docker={td}"]
    out = []
    if tb == "object":
        bk = {norm_key(k): v for k, v in b.items()}
        dk = {norm_key(k): v for k, v in d.items()}
        # A key one side sends as null and the other leaves out is the same to a Go client
        # (omitempty): told apart as extra-null / missing-null.
        for k in sorted(dk.keys() - bk.keys()):
            what = "missing-null" if dk[k] is None else "missing"
            out.append(f"{what} {path}.{k} ({typename(dk[k])})")
        for k in sorted(bk.keys() - dk.keys()):
            what = "extra-null" if bk[k] is None else "extra"
            out.append(f"{what} {path}.{k} ({typename(bk[k])})")
        for k in sorted(bk.keys() & dk.keys()):
            out += shape_diff(bk[k], dk[k], f"{path}.{k}")
    elif tb == "array":
        if bool(b) != bool(d):
            out.append(f"empty {path}[] berth={len(b)} docker={len(d)}")
        elif b:
            out += shape_diff(representative(b), representative(d), f"{path}[]")
    return out


def get_path(v, path):
    for part in [p for p in path.split(".") if p]:
        if isinstance(v, dict):
            v = v.get(part)
        elif isinstance(v, list) and part.isdigit() and int(part) < len(v):
            v = v[int(part)]
        else:
            return None
    return v


def value_repr(v):
    if isinstance(v, str):
        return json.dumps(norm_text(v))
    if isinstance(v, (dict, list)):
        return norm_text(json.dumps(v, sort_keys=True))
    return json.dumps(v)


HEADERS = ["api-version", "ostype", "docker-experimental", "x-docker-container-path-stat"]


def media(ct):
    return ct.split(";")[0].strip().lower()


def compare(step, b, d):
    """The differences between berth's answer `b` and dockerd's `d` to `step`."""
    out = []
    if b.status != d.status:
        out.append(f"status berth={b.status} docker={d.status}")
    if media(b.content_type) != media(d.content_type) and (b.body or d.body):
        out.append(f"content-type berth={media(b.content_type) or '-'} docker={media(d.content_type) or '-'}")
    for h in HEADERS:
        if h in d.headers and h not in b.headers:
            out.append(f"header-missing {h}")
        elif h in b.headers and h not in d.headers:
            out.append(f"header-extra {h}")
    if "x-docker-container-path-stat" in b.headers and "x-docker-container-path-stat" in d.headers:
        out += stat_header_diff(b.headers["x-docker-container-path-stat"], d.headers["x-docker-container-path-stat"])
    if b.status != d.status or step.status_only:
        return out
    out += body_diff(step, b, d)
    return out


def stat_header_diff(hb, hd):
    import base64

    try:
        sb = json.loads(base64.b64decode(hb))
        sd = json.loads(base64.b64decode(hd))
    except ValueError:
        return ["header x-docker-container-path-stat undecodable"]
    out = ["path-stat " + x for x in shape_diff(sb, sd)]
    for k in ("name", "size", "mode", "linkTarget"):
        if sb.get(k) != sd.get(k):
            out.append(f"path-stat value .{k} berth={json.dumps(sb.get(k))} docker={json.dumps(sd.get(k))}")
    return out


def body_diff(step, b, d):
    out = []
    kind = step.kind
    if kind == "stream" or media(d.content_type) in (
        "application/vnd.docker.multiplexed-stream",
        "application/vnd.docker.raw-stream",
    ):
        sb, sd = demux(b.body), demux(d.body)
        if (sb is None) != (sd is None):
            out.append(f"framing berth={'framed' if sb else 'raw'} docker={'framed' if sd else 'raw'}")
            sb = sb or (b.body, b"")
            sd = sd or (d.body, b"")
        elif sb is None:
            sb, sd = (b.body, b""), (d.body, b"")
        for name, x, y in (("stdout", sb[0], sd[0]), ("stderr", sb[1], sd[1])):
            xt, yt = norm_text(x.decode("utf-8", "replace")), norm_text(y.decode("utf-8", "replace"))
            if xt != yt:
                out.append(f"{name} berth={json.dumps(xt[:200])} docker={json.dumps(yt[:200])}")
        return out
    if kind == "tar" or media(d.content_type) == "application/x-tar":
        nb, nd = tar_names(b.body), tar_names(d.body)
        if nb is None or nd is None:
            if (nb is None) != (nd is None):
                out.append(f"tar berth={'tar' if nb is not None else 'not-a-tar'} docker={'tar' if nd is not None else 'not-a-tar'}")
            return out
        nb = sorted(set(norm_text(n) for n in nb))
        nd = sorted(set(norm_text(n) for n in nd))
        if nb != nd and not step.tar_loose:
            out.append(f"tar berth={nb[:12]} docker={nd[:12]}")
        return out
    jb, jd = b.json(), d.json()
    if jb is NOT_JSON or jd is NOT_JSON:
        lb, ld = ndjson(b.body), ndjson(d.body)
        if lb is not None and ld is not None and (len(lb) > 1 or len(ld) > 1 or kind == "ndjson"):
            return ndjson_diff(step, lb, ld)
        if (jb is NOT_JSON) != (jd is NOT_JSON) and (b.body.strip() or d.body.strip()):
            out.append(f"body berth={'json' if jb is not NOT_JSON else 'text'} docker={'json' if jd is not NOT_JSON else 'text'}")
            return out
        if jb is NOT_JSON:
            tb, td = norm_text(b.body.decode("utf-8", "replace")), norm_text(d.body.decode("utf-8", "replace"))
            if tb.strip() != td.strip() and not step.text_loose:
                out.append(f"text berth={json.dumps(tb[:200])} docker={json.dumps(td[:200])}")
            return out
    if isinstance(jb, dict) and isinstance(jd, dict) and "message" in jd and b.status >= 400:
        mb, md = norm_text(str(jb.get("message"))), norm_text(str(jd.get("message")))
        if mb != md:
            out.append(f"message berth={json.dumps(mb)} docker={json.dumps(md)}")
    out += shape_diff(jb, jd)
    for p in step.values:
        vb, vd = get_path(jb, p), get_path(jd, p)
        if value_repr(vb) != value_repr(vd):
            out.append(f"value .{p} berth={value_repr(vb)[:200]} docker={value_repr(vd)[:200]}")
    return out


def ndjson_diff(step, lb, ld):
    """Streams of JSON objects: the union of the objects' shapes, the error objects apart."""
    out = []
    eb = [o for o in lb if isinstance(o, dict) and "error" in o]
    ed = [o for o in ld if isinstance(o, dict) and "error" in o]
    if bool(eb) != bool(ed):
        out.append(f"stream-error berth={json.dumps(norm_text(str(eb[0]['error'])) if eb else None)} docker={json.dumps(norm_text(str(ed[0]['error'])) if ed else None)}")
    elif eb and norm_text(str(eb[0]["error"])) != norm_text(str(ed[0]["error"])):
        out.append(f"stream-error berth={json.dumps(norm_text(str(eb[0]['error'])))} docker={json.dumps(norm_text(str(ed[0]['error'])))}")
    if step.stream_by:
        # Group objects by a key (events: Type) and compare the shapes per group.
        gb, gd = {}, {}
        for o in lb:
            gb.setdefault(str(get_path(o, step.stream_by)), []).append(o)
        for o in ld:
            gd.setdefault(str(get_path(o, step.stream_by)), []).append(o)
        for g in sorted(gd.keys() - gb.keys()):
            out.append(f"stream-missing {step.stream_by}={g}")
        for g in sorted(gb.keys() - gd.keys()):
            out.append(f"stream-extra {step.stream_by}={g}")
        for g in sorted(gb.keys() & gd.keys()):
            out += [x.replace(" .", f" [{g}].", 1) for x in shape_diff(representative(gb[g]), representative(gd[g]))]
        return out
    rb = representative([o for o in lb if o not in eb])
    rd = representative([o for o in ld if o not in ed])
    if rb is not None and rd is not None:
        out += shape_diff(rb, rd)
    return out


# ---- the spec, for the requests only berth answers (API versions dockerd 20.10 lacks) ----


class Spec:
    def __init__(self, doc):
        self.doc = doc
        self.paths = doc.get("paths", {})

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 50:
            ref = schema["$ref"]
            node = self.doc
            for part in ref.lstrip("#/").split("/"):
                node = node.get(part, {})
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = dict(node, **extra)
            seen += 1
        if isinstance(schema, dict) and "allOf" in schema:
            merged = {"properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self.resolve(part)
                if "type" in part:
                    merged.setdefault("type", part["type"])
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
                if "additionalProperties" in part:
                    merged["additionalProperties"] = part["additionalProperties"]
            for k, v in schema.items():
                if k not in ("allOf",):
                    if k == "properties":
                        merged["properties"].update(v)
                    else:
                        merged.setdefault(k, v)
            if not merged["properties"]:
                del merged["properties"]
            schema = merged
        return schema

    def operation(self, method, path, want_path=False):
        segs = [s for s in path.split("?")[0].split("/") if s]
        best, best_score = None, -1
        best_path = None
        for p, ops in self.paths.items():
            ps = [s for s in p.split("/") if s]
            if len(ps) != len(segs):
                continue
            score = 0
            for a, b in zip(ps, segs):
                if a.startswith("{"):
                    continue
                if a != b:
                    score = -1
                    break
                score += 1
            if score > best_score and method.lower() in ops:
                best, best_score, best_path = ops[method.lower()], score, p
        return best_path if want_path else best

    def operation_path(self, method, path):
        """The spec's path template an actual path falls under (`/containers/{id}/json`)."""
        op = self.operation(method, path, want_path=True)
        return op

    def check(self, method, path, status, body):
        op = self.operation(method, path)
        if op is None:
            return [f"spec-no-operation {method} {path.split('?')[0]}"]
        responses = op.get("responses", {})
        resp = responses.get(status, responses.get(str(status)))
        if resp is None:
            return [f"spec-status {status}"]
        schema = resp.get("schema")
        if schema is None or body is None:
            return []
        return self.check_value(schema, body, "")

    def check_value(self, schema, v, path):
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return []
        t = schema.get("type")
        if v is None:
            # Go encodes nil slices and maps as null whatever the spec says: only scalars count.
            if schema.get("x-nullable") or t in (None, "array", "object") or "properties" in schema:
                return []
            return [f"spec-null {path or '.'} spec={t}"]
        if t is None and "properties" in schema:
            t = "object"
        want = {
            "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
            "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
            "string": lambda x: isinstance(x, str),
            "boolean": lambda x: isinstance(x, bool),
            "object": lambda x: isinstance(x, dict),
            "array": lambda x: isinstance(x, list),
        }
        if t in want and not want[t](v):
            return [f"spec-type {path or '.'} spec={t} berth={typename(v)}"]
        out = []
        if isinstance(v, dict):
            props = schema.get("properties", {})
            addl = schema.get("additionalProperties")
            for k, sub in v.items():
                if k in props:
                    out += self.check_value(props[k], sub, f"{path}.{k}")
                elif isinstance(addl, dict):
                    out += self.check_value(addl, sub, f"{path}.{norm_key(k)}")
                elif addl is None and props:
                    out.append(f"spec-unknown {path}.{k}")
            for k in schema.get("required", []):
                if k not in v:
                    out.append(f"spec-missing {path}.{k}")
        elif isinstance(v, list) and "items" in schema:
            seen = set()
            for item in v:
                for x in self.check_value(schema["items"], item, f"{path}[]"):
                    if x not in seen:
                        seen.add(x)
                        out.append(x)
        return out


def load_spec(path):
    try:
        import yaml
    except ImportError:
        return None
    try:
        with open(path) as f:
            return Spec(yaml.safe_load(f))
    except OSError:
        return None
