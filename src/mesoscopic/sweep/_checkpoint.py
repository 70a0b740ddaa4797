"""The checkpoint store: a directory of finished chunks and the final NetCDF file beside it.

Files are data: only regular NetCDF3 files are read, a chunk's fingerprint is checked
before its data and its SHA-256 checksum after; the manifest records the sweep's
description, so that another sweep pointed at the store is told what differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import uuid
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import io as _io
from ._chunks import CALL_DIM, CALL_INDEX, ChunkResult, Variable
from ._dataset import utc_now
from ._fingerprint import explain_difference

if TYPE_CHECKING:
    import xarray as xr


_MANIFEST = "sweep.json"
_CHUNK_PREFIX = "chunk-"
_MANIFEST_FORMAT = 2  # 2: chunks carry a checksum; the observable's constants fingerprinted
_MAX_MANIFEST_BYTES = 64 * 2**20
_CHECKSUM = "checksum"


class CheckpointStore:
    """A directory of finished chunks plus the final NetCDF file beside it."""

    def __init__(self, checkpoint: str | os.PathLike[str]) -> None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path, got {checkpoint!r}")
        path = pathlib.Path(checkpoint)
        stem = path.with_suffix("") if path.suffix == ".nc" else path
        if not stem.name:
            raise ValueError(f"checkpoint must name a file, got {str(checkpoint)!r}")
        self.final_path = stem.with_name(stem.name + ".nc")
        self.directory = stem.with_name(stem.name + ".chunks")

    def open(self, description: dict[str, Any], fingerprint: str, *, overwrite: bool) -> None:
        """Check the final file and the directory, then resume, start over or start."""
        manifest_path = self.directory / _MANIFEST
        if self.directory.is_symlink() or (
            self.directory.exists() and not self.directory.is_dir()
        ):
            raise ValueError(
                f"checkpoint directory {str(self.directory)!r} exists and is not a directory"
            )
        stored = self._read_manifest(manifest_path) if manifest_path.exists() else None
        if stored is not None and stored.get("fingerprint") != fingerprint and not overwrite:
            raise ValueError(
                f"checkpoint {str(self.directory)!r} belongs to a different sweep: "
                f"{explain_difference(stored.get('description', {}), description)}. Use a new "
                f"checkpoint path, pass overwrite=True to discard it and its result, or "
                f"delete {str(self.directory)!r} to start over"
            )
        if not overwrite:
            self._check_final_file(fingerprint)
        # A final save killed half-way leaves a temporary beside the final file.
        _io._remove_stale_temporaries(self.final_path)
        if self.directory.exists():
            self._remove_temporaries()
        if stored is not None:
            if stored.get("fingerprint") == fingerprint:
                return
            self._discard()
        elif self.directory.exists() and any(self.directory.glob(f"{_CHUNK_PREFIX}*")):
            if not overwrite:
                raise ValueError(
                    f"checkpoint directory {str(self.directory)!r} holds chunks but no "
                    f"{_MANIFEST}; delete it to start over"
                )
            self._discard()
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": _MANIFEST_FORMAT,
            "fingerprint": fingerprint,
            "started": utc_now(),
            "description": description,
        }
        _write_text_atomically(manifest_path, json.dumps(manifest, indent=1, allow_nan=True))

    def _read_manifest(self, manifest_path: pathlib.Path) -> dict[str, Any]:
        try:
            if manifest_path.is_symlink() or not manifest_path.is_file():
                raise ValueError("it is not a regular file")
            if manifest_path.stat().st_size > _MAX_MANIFEST_BYTES:
                raise ValueError(f"it is larger than {_MAX_MANIFEST_BYTES} bytes")
            stored = json.loads(manifest_path.read_text())
            if not isinstance(stored, dict):
                raise ValueError("it is not a JSON object")
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read checkpoint manifest {str(manifest_path)!r} ({exc}); delete "
                f"{str(self.directory)!r} to start over"
            ) from exc
        if stored.get("format") != _MANIFEST_FORMAT:
            raise ValueError(
                f"checkpoint {str(self.directory)!r} has format {stored.get('format')!r}, "
                f"from another version of mesoscopic (this one writes format "
                f"{_MANIFEST_FORMAT}); delete it to start over"
            )
        return stored

    def _check_final_file(self, fingerprint: str) -> None:
        """An existing final file is replaced only if it is this sweep's own result."""
        final = self.final_path
        if not (final.exists() or final.is_symlink()):
            return
        seen: list[Any] = []

        def stop_after_attributes(attrs: dict[Any, Any]) -> None:
            seen.append(attrs.get("fingerprint"))
            raise _AttributesRead

        with contextlib.suppress(_AttributesRead, ValueError, OSError):
            _io._read_netcdf(final, check_attrs=stop_after_attributes, netcdf3_only=True)
        if seen != [fingerprint]:
            raise ValueError(
                f"{str(final)!r} exists and is not the result of this sweep; run_sweep does "
                "not replace it: pass overwrite=True to replace it, or choose another "
                "checkpoint path"
            )

    def _discard(self) -> None:
        """Empty a checkpoint directory of another sweep; refuse if it holds other files."""
        entries = list(self.directory.iterdir())
        foreign = [
            entry.name
            for entry in entries
            if entry.is_symlink()
            or not entry.is_file()
            or not (entry.name == _MANIFEST or entry.name.startswith(_CHUNK_PREFIX))
        ]
        if foreign:
            raise ValueError(
                f"checkpoint directory {str(self.directory)!r} holds entries that are not "
                f"checkpoint files ({', '.join(sorted(foreign)[:5])}); it is not discarded: "
                "delete it yourself, or use a new checkpoint path"
            )
        for entry in entries:
            entry.unlink()

    def _remove_temporaries(self) -> None:
        # Left by a writer killed between creating and renaming a file: never data.
        for leftover in self.directory.glob(".*.tmp"):
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)

    def load_chunks(self, fingerprint: str, n_calls: int) -> list[ChunkResult]:
        """The finished chunks: fingerprint checked first, then the checksum of the data."""
        chunks = []
        covered = np.zeros(n_calls, dtype=bool)
        for path in sorted(self.directory.glob(f"{_CHUNK_PREFIX}*.nc")):
            chunk = self._read_chunk(path, fingerprint)
            if chunk is None:
                continue
            indices = chunk.indices
            if indices.size and (indices.min() < 0 or indices.max() >= n_calls):
                raise ValueError(f"checkpoint chunk {str(path)!r} has points outside the grid")
            if np.unique(indices).size != indices.size or covered[indices].any():
                self._set_aside(path, "holds points that another chunk holds too")
                continue
            covered[indices] = True
            chunks.append(chunk)
        return chunks

    def _read_chunk(self, path: pathlib.Path, fingerprint: str) -> ChunkResult | None:
        if path.is_symlink() or not path.is_file():
            raise ValueError(
                f"checkpoint entry {str(path)!r} is not a regular file; a checkpoint holds "
                "only NetCDF3 files written by mesoscopic, so it is not opened. Delete it, "
                f"or delete {str(self.directory)!r} to start over"
            )
        with open(path, "rb") as handle:
            magic = handle.read(3)
        if magic != b"CDF":
            raise ValueError(
                f"checkpoint chunk {str(path)!r} is not a NetCDF3 file written by mesoscopic "
                f"(it starts with {magic!r}); it is not opened. Delete it, or delete "
                f"{str(self.directory)!r} to start over"
            )

        def same_sweep(attrs: dict[Any, Any]) -> None:
            if attrs.get("fingerprint") != fingerprint:
                raise _ForeignChunk

        try:
            dataset = _io._read_netcdf(path, check_attrs=same_sweep, netcdf3_only=True)
            chunk = _chunk_from_dataset(dataset)
        except _ForeignChunk:
            raise ValueError(
                f"checkpoint chunk {str(path)!r} belongs to a different sweep; delete "
                f"{str(self.directory)!r} to start over"
            ) from None
        except Exception as exc:
            # Atomic writes never leave such a file; something else damaged it.
            self._set_aside(path, f"is unreadable ({exc})")
            return None
        stored = dataset.attrs.get(_CHECKSUM)
        if stored is None or stored != _chunk_checksum(chunk):
            self._set_aside(path, "fails its checksum (its data changed after it was written)")
            return None
        return chunk

    def _set_aside(self, path: pathlib.Path, problem: str) -> None:
        damaged = path.with_name(path.name + ".damaged")
        os.replace(path, damaged)
        warnings.warn(
            f"checkpoint chunk {str(path)!r} {problem}; it is kept as {damaged.name!r} and "
            "its points are computed again",
            RuntimeWarning,
            stacklevel=4,
        )

    def write_chunk(self, chunk: ChunkResult, fingerprint: str) -> None:
        name = f"{_CHUNK_PREFIX}{int(chunk.indices[0]):010d}-{uuid.uuid4().hex[:8]}.nc"
        _io.save(_chunk_to_dataset(chunk, fingerprint), self.directory / name)


class _ForeignChunk(Exception):
    """A chunk whose fingerprint is not this sweep's (raised before its data are read)."""


class _AttributesRead(Exception):
    """Stops reading a file once its attributes are known."""


def _chunk_checksum(chunk: ChunkResult) -> str:
    """SHA-256 of a chunk as the NetCDF round trip keeps it.

    It covers the call indices, every output (name, dims, attributes, dtype, shape and
    bytes) and the output coordinates.
    """
    digest = hashlib.sha256()

    def add_array(label: str, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype.kind in "biufc":
            canonical = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
            header = [label, canonical.dtype.str, list(canonical.shape)]
            digest.update(json.dumps(header).encode())
            digest.update(canonical.tobytes())
        else:  # strings: their dtype may change from fixed-width to object on reading
            text = [label, list(values.shape), [str(v) for v in values.ravel().tolist()]]
            digest.update(json.dumps(text).encode())

    add_array(CALL_INDEX, chunk.indices.astype(np.int64))
    for name in sorted(chunk.variables):
        variable = chunk.variables[name]
        about = [name, list(variable.dims), variable.attrs]
        digest.update(json.dumps(about, sort_keys=True, default=_io._json_default).encode())
        add_array(name, variable.data)
    for dim in sorted(chunk.coords):
        add_array(f"coordinate {dim}", chunk.coords[dim])
    return digest.hexdigest()


def _chunk_to_dataset(chunk: ChunkResult, fingerprint: str) -> xr.Dataset:
    import xarray as xr

    data_vars: dict[str, Any] = {
        name: ((CALL_DIM, *variable.dims), variable.data, variable.attrs)
        for name, variable in chunk.variables.items()
    }
    data_vars[CALL_INDEX] = (CALL_DIM, chunk.indices)
    coords = {dim: (dim, values) for dim, values in chunk.coords.items()}
    attrs = {"fingerprint": fingerprint, _CHECKSUM: _chunk_checksum(chunk)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _chunk_from_dataset(dataset: xr.Dataset) -> ChunkResult:
    variables = {
        str(name): Variable(
            tuple(str(d) for d in variable.dims[1:]), variable.values, dict(variable.attrs)
        )
        for name, variable in dataset.data_vars.items()
        if name != CALL_INDEX
    }
    coords = {str(name): dataset[name].values for name in dataset.coords}
    indices = dataset[CALL_INDEX].values
    if indices.dtype.kind not in "iu":
        raise ValueError(f"{CALL_INDEX} has dtype {indices.dtype}, not integers")
    for name, variable in variables.items():
        if variable.data.shape[:1] != indices.shape:
            raise ValueError(f"output {name!r} does not have one entry per call")
    return ChunkResult(indices.astype(np.int64), variables, coords)


def _write_text_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
