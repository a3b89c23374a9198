"""HTTP/1.1 over a unix socket, as the Engine API's clients speak it: plain requests (stdlib
http.client), hijacked ones (attach, exec start: the answer's body is read raw until the server
closes) and the decoding of the answer bodies the API has (JSON, newline-delimited JSON, the
8-byte multiplexed stream, tar, text)."""

import http.client
import io
import json
import socket
import tarfile


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


NOT_JSON = object()  # what Answer.json() gives for a body that is not JSON (JSON null is None)


class Answer:
    """One answer: status, headers (lower-case names) and the whole body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return NOT_JSON

    def data(self, default=None):
        """The JSON body, or `default` when there is none (or it is null)."""
        v = self.json()
        return default if v is NOT_JSON or v is None else v


def request(sock_path, method, path, body=None, headers=None, timeout=60):
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    hdrs = {"Host": "docker"}
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = b"" if method == "HEAD" else resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    except (OSError, http.client.HTTPException) as e:
        return Answer(0, {}, f"transport error: {e}".encode())
    finally:
        conn.close()


def hijack(sock_path, method, path, body=b"", stdin=None, timeout=30, upgrade=True, after_upgrade=None):
    """POST with `Connection: Upgrade` (as the docker CLI and the SDKs do for attach and exec
    start); reads the status line and headers, calls `after_upgrade` (a start that must come
    after the attach), writes `stdin` and half-closes, then reads the stream until the server
    closes it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        head = [f"{method} {path} HTTP/1.1", "Host: docker", f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        if upgrade:
            head += ["Connection: Upgrade", "Upgrade: tcp"]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
        header_bytes, _, rest = raw.partition(b"\r\n\r\n")
        lines = header_bytes.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            return Answer(0, {}, b"bad status line: " + header_bytes[:200])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if after_upgrade is not None and status in (101, 200):
            after_upgrade()
        if status == 101 and stdin is not None:
            s.sendall(stdin)
            s.shutdown(socket.SHUT_WR)
        body = rest
        length = headers.get("content-length")
        try:
            while status != 101 and length is not None and len(body) < int(length):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            while status == 101 or length is None:
                # A chunked answer on a connection kept alive ends with its last chunk.
                if status != 101 and chunked and body.endswith(b"0\r\n\r\n"):
                    break
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        except socket.timeout:
            body += b"<timeout>"
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = dechunk(body)
        return Answer(status, headers, body)
    except OSError as e:
        return Answer(0, {}, f"transport error: {e}".encode())
    finally:
        s.close()


def dechunk(data):
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        try:
            n = int(size.split(b";")[0], 16)
        except ValueError:
            return out + data
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


def demux(data):
    """The multiplexed stream's frames as (stdout, stderr) bytes, or None when `data` is not
    framed."""
    out, err = b"", b""
    i = 0
    while i < len(data):
        if len(data) - i < 8 or data[i] not in (0, 1, 2) or data[i + 1:i + 4] != b"\0\0\0":
            return None
        n = int.from_bytes(data[i + 4:i + 8], "big")
        payload = data[i + 8:i + 8 + n]
        if len(payload) != n:
            return None
        if data[i] == 2:
            err += payload
        else:
            out += payload
        i += 8 + n
    return out, err


def ndjson(data):
    """The objects of a newline-delimited JSON body (also JSON objects written back to back
    without newlines, as some streams are), or None when it is not one."""
    dec = json.JSONDecoder()
    text = data.decode("utf-8", "replace")
    objs, i = [], 0
    while True:
        while i < len(text) and text[i] in " \r\n\t":
            i += 1
        if i >= len(text):
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            return None
        objs.append(obj)
    return objs


def tar_names(data):
    """The member names of a tar body (sorted), or None when it is not a tar."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
            return sorted(m.name.rstrip("/") for m in t.getmembers())
    except (tarfile.TarError, EOFError, OSError):
        return None


def make_tar(files):
    """A tar (bytes) of {name: bytes or str} regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, content in files.items():
            if isinstance(content, str):
                content = content.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(content)
            ti.mode = 0o644
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(content))
    return buf.getvalue()
