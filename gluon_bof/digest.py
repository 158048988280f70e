"""File digests: SHA-1 (GluonCV's model store names and checks its files by it) and SHA-256
(checkpoint manifests record it), read in 1 MiB chunks so large weight files need no large buffer."""
import hashlib

__all__ = ["file_digest"]


def file_digest(path: str, algorithm: str = "sha1") -> str:
    """Hex digest of the bytes of ``path`` with ``algorithm`` (any name ``hashlib.new`` accepts)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
