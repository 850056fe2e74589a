"""Resumable file downloads with retries and SHA-256/MD5 checks (http, https, file)."""

import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "clipstudy-downloader"


class ChecksumError(ValueError):
    """A downloaded file does not have the SHA-256 or MD5 digest the config pins."""


def digests_of(path: str | os.PathLike, *algorithms: str) -> dict[str, str]:
    """Hex digests of a file for each hashlib algorithm, in one chunked read."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            for digest in hashes.values():
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    return digests_of(path, "sha256")["sha256"]


def _open(url: str, offset: int, timeout: float):
    """Open `url` at byte `offset`; return (stream, start byte, total size or None)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(url2pathname(parsed.path))
        total = path.stat().st_size
        handle = open(path, "rb")  # noqa: SIM115 (the caller closes it)
        handle.seek(min(offset, total))
        return handle, min(offset, total), total
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    response = urllib.request.urlopen(
        urllib.request.Request(url, headers=headers), timeout=timeout
    )
    if offset and response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        total = content_range.rpartition("/")[2]
        return response, offset, int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return response, 0, int(length) if length and length.isdigit() else None


def _transient(error: Exception) -> bool:
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    if isinstance(error, urllib.error.HTTPError):
        return error.code in (408, 429) or error.code >= 500
    return isinstance(error, (OSError, TimeoutError, http.client.HTTPException))


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    retries: int = 4,
    backoff: float = 2.0,
    timeout: float = 60.0,
    md5: str | None = None,
) -> str:
    """Download `url` to `dest`, resuming a partial `dest.part`; return its SHA-256.

    Transient failures are retried `retries` times with exponential backoff,
    continuing from the bytes already on disk (HTTP Range). With `sha256` or
    `md5`, a mismatching file is removed and ChecksumError names both digests.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = time.perf_counter()
    for attempt in range(retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        try:
            stream, begin, total = _open(url, offset, timeout)
            with stream, open(part, "r+b" if part.exists() else "wb") as out:
                out.seek(begin)
                out.truncate()
                if begin:
                    log.info("resuming %s at byte %s", url, f"{begin:,}")
                shutil.copyfileobj(stream, out, CHUNK)
                size = out.tell()
            if total is not None and size < total:
                raise OSError(f"connection closed at byte {size:,} of {total:,}")
            break
        except Exception as error:
            range_refused = (
                isinstance(error, urllib.error.HTTPError) and error.code == 416
            )
            if range_refused and attempt < retries:
                log.warning("%s refused to resume; starting over", url)
                part.unlink(missing_ok=True)
                continue
            if not _transient(error) or attempt == retries:
                raise RuntimeError(
                    f"downloading {url} failed after {attempt + 1} attempt(s): "
                    f"{error}; check the URL and your connection, then run again "
                    f"(the partial file {part} is kept and resumed)"
                ) from error
            wait = backoff * 2**attempt
            log.warning(
                "download of %s failed (%s); retry %d of %d in %.0f s",
                url,
                error,
                attempt + 1,
                retries,
                wait,
            )
            time.sleep(wait)
    actual = digests_of(part, "sha256", "md5")
    for name, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None and actual[name] != expected.lower():
            part.unlink()
            raise ChecksumError(
                f"checksum mismatch for {url}: expected {name} {expected}, got "
                f"{actual[name]}; the file was removed. Download again, or if the "
                "upstream file changed on purpose, pin the new digest "
                f"({name}: {actual[name]}) in the config"
            )
    os.replace(part, dest)
    seconds = time.perf_counter() - start
    log.info(
        "downloaded %s (%s bytes, sha256 %s, md5 %s) in %.1f s",
        url,
        f"{dest.stat().st_size:,}",
        actual["sha256"],
        actual["md5"],
        seconds,
    )
    return actual["sha256"]
