"""An in-memory Beam FileSystem (scheme ``memfs://``) standing in for gs:// in tests.

Defining the class registers it with Beam (FileSystems finds FileSystem subclasses by scheme).
Files live in a class-level dict, so it works with in-process runners only.
"""

from __future__ import annotations

import io
import posixpath

from apache_beam.io.filesystem import FileMetadata, FileSystem


class _Writer(io.BytesIO):
    def __init__(self, store: dict, path: str):
        super().__init__()
        self._store, self._path = store, path

    def close(self):
        if not self.closed:
            self._store[self._path] = self.getvalue()
        super().close()


class MemFileSystem(FileSystem):
    FILES: dict[str, bytes] = {}

    @classmethod
    def scheme(cls):
        return "memfs"

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path in sorted(self.FILES):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(self.FILES[path]), 0.0)

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        return _Writer(self.FILES, path)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        if path not in self.FILES:
            raise FileNotFoundError(path)
        return io.BytesIO(self.FILES[path])

    def copy(self, source_file_names, destination_file_names):
        for s, d in zip(source_file_names, destination_file_names):
            self.FILES[d] = self.FILES[s]

    def rename(self, source_file_names, destination_file_names):
        for s, d in zip(source_file_names, destination_file_names):
            self.FILES[d] = self.FILES.pop(s)

    def exists(self, path):
        return path in self.FILES

    def size(self, path):
        return len(self.FILES[path])

    def last_updated(self, path):
        return 0.0

    def checksum(self, path):
        return str(len(self.FILES[path]))

    def metadata(self, path):
        return FileMetadata(path, len(self.FILES[path]), 0.0)

    def delete(self, paths):
        for p in paths:
            self.FILES.pop(p, None)

    def report_lineage(self, path, lineage):
        pass

    @classmethod
    def put_tree(cls, local_dir, prefix: str) -> None:
        """Copy every file under a local directory to ``prefix`` (a memfs:// URL)."""
        import os

        for root, _, files in os.walk(local_dir):
            for name in files:
                rel = posixpath.relpath(os.path.join(root, name), local_dir)
                with open(os.path.join(root, name), "rb") as f:
                    cls.FILES[f"{prefix.rstrip('/')}/{rel}"] = f.read()


class UnreachableFileSystem(MemFileSystem):
    """Scheme ``downfs://``: every call fails the way gs:// does without network or credentials."""

    @classmethod
    def scheme(cls):
        return "downfs"

    def exists(self, path):
        raise ConnectionError(f"Max retries exceeded: /storage/v1/b/{path}\n(network down)")

    def _list(self, dir_or_prefix):
        raise ConnectionError("network down")
