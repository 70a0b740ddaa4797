"""Reading and writing result datasets: NetCDF (always available) and Zarr (optional).

:func:`save` writes an :class:`xarray.Dataset` so that :func:`load` gives back the
same dataset, values, dtypes and attributes included, and so that a crash never
leaves a half-written file behind: the data go to a temporary name in the target's
directory, are flushed to disk (``fsync``), and only then replace the target with
``os.replace``. A reader therefore sees either the old file or the new one.

NetCDF files are written in the classic NetCDF3 format with SciPy's writer
(``engine="scipy"``), which needs no library beyond SciPy. NetCDF3 has no complex
numbers, no 64-bit integers, and attributes that are only strings and numbers, so
the following are encoded on writing and undone by :func:`load`:

* a complex variable ``x`` is stored as two real variables ``x__real`` and
  ``x__imag``;
* 64-bit and unsigned integers are stored as 32-bit integers when their values fit,
  otherwise as float64 when they are exact there (``|n| <= 2**53``), and the original
  dtype is restored on reading; larger integers raise an error;
* attributes that are not strings (numbers, booleans, ``None``, lists, dicts, NumPy
  scalars and arrays) are stored as JSON text and decoded on reading, so a
  provenance dictionary survives the round trip (NumPy arrays come back as lists).

Other programs can open the NetCDF files as they are (``ncdump``, xarray, netCDF4);
they see the encoded form. Zarr stores (a path ending in ``.zarr``) need the
optional ``zarr`` package; they keep complex numbers and 64-bit integers natively
and use the same attribute encoding.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pathlib
import shutil
import uuid
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["load", "save"]

FileFormat = Literal["netcdf", "zarr"]

# Attribute names this module adds to record how a value was encoded.
_JSON_ATTRS = "mesoscopic_json_attrs"
_ORIGINAL_DTYPE = "mesoscopic_dtype"
_COMPLEX_OF = "mesoscopic_complex_of"
_COMPLEX_PART = "mesoscopic_complex_part"
_RESERVED_ATTRS = (_JSON_ATTRS, _ORIGINAL_DTYPE, _COMPLEX_OF, _COMPLEX_PART)

_NETCDF3_INTEGERS = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
_INT32 = np.iinfo(np.int32)
_EXACT_FLOAT_INTEGER = 2**53


def save(
    dataset: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    format: FileFormat | None = None,
) -> pathlib.Path:
    """Write a dataset atomically to a NetCDF file or a Zarr store.

    Parameters
    ----------
    dataset : xarray.Dataset
        The data. Variables may be real, complex, integer or boolean; attributes of
        the dataset and of its variables may be strings, numbers, booleans, ``None``,
        lists, dicts, NumPy scalars or arrays.
    path : str or path-like
        Target file. Parent directories are created. An existing file is replaced
        only once the new one is complete.
    format : {"netcdf", "zarr"}, optional
        Default: ``"zarr"`` for a path ending in ``.zarr``, else ``"netcdf"``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If `dataset` is not an xarray Dataset, or an attribute cannot be encoded.
    ValueError
        If `format` is unknown, an integer variable is too large for NetCDF3, a
        complex variable is a dimension coordinate, or a name ends in ``__real`` /
        ``__imag`` in a way that would collide with the complex encoding.
    ImportError
        For Zarr when the ``zarr`` package is missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, xarray as xr
    >>> from mesoscopic import io
    >>> data = xr.Dataset(
    ...     {"amplitude": ("energy", np.array([1 + 2j, 0.5j]), {"units": "1"})},
    ...     coords={"energy": [0.1, 0.2]},
    ...     attrs={"provenance": {"seed": 7, "note": None}},
    ... )
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = io.save(data, pathlib.Path(folder) / "result.nc")
    ...     back = io.load(path)
    >>> back.identical(data)
    True
    >>> back.attrs["provenance"]
    {'seed': 7, 'note': None}
    """
    import xarray as xr

    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"dataset must be an xarray.Dataset, got {type(dataset).__name__}")
    target = pathlib.Path(path)
    chosen = _choose_format(target, format)
    target.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "netcdf":
        encoded = _encode(dataset, split_complex=True, narrow_integers=True)
        _atomic_write(target, lambda tmp: encoded.to_netcdf(tmp, engine="scipy"))
    else:
        _require_zarr()
        encoded = _encode(dataset, split_complex=False, narrow_integers=False)
        _atomic_write_directory(target, lambda tmp: encoded.to_zarr(tmp, mode="w"))
    return target


def load(
    path: str | os.PathLike[str],
    *,
    format: FileFormat | None = None,
) -> xr.Dataset:
    """Read a dataset written by :func:`save` (or any NetCDF file / Zarr store).

    The data are read into memory and the file is closed, so it can be replaced or
    deleted right after. Encodings made by :func:`save` are undone: complex
    variables, original integer dtypes and non-string attributes are restored.

    Parameters
    ----------
    path : str or path-like
        A NetCDF file (NetCDF3 is read with SciPy; a NetCDF4/HDF5 file needs the
        ``netCDF4`` or ``h5netcdf`` package) or a Zarr store.
    format : {"netcdf", "zarr"}, optional
        Default: ``"zarr"`` for a path ending in ``.zarr`` or a directory, else
        ``"netcdf"``.

    Returns
    -------
    xarray.Dataset
        The dataset, held in memory.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If `format` is unknown or the file is not NetCDF.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, xarray as xr
    >>> from mesoscopic import io
    >>> seeds = xr.Dataset({"T": ("seed", [0.9, 0.8])}, coords={"seed": np.arange(2)})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = io.load(io.save(seeds, pathlib.Path(folder) / "seeds.nc"))
    >>> back["seed"].dtype == seeds["seed"].dtype
    True
    """
    import xarray as xr

    source = pathlib.Path(path)
    if not source.exists():
        raise FileNotFoundError(f"no dataset at {str(source)!r}")
    chosen = _choose_format(source, format)
    if chosen == "netcdf":
        with open(source, "rb") as handle:
            magic = handle.read(4)
        if magic[:3] == b"CDF":
            engine: str | None = "scipy"
        elif magic == b"\x89HDF":
            engine = None  # NetCDF4: let xarray pick netCDF4 or h5netcdf
        else:
            raise ValueError(
                f"{str(source)!r} is not a NetCDF file (it starts with {magic!r}, "
                "expected b'CDF' for NetCDF3 or b'\\x89HDF' for NetCDF4)"
            )
        with xr.open_dataset(source, engine=engine) as opened:
            dataset = opened.load()
    else:
        _require_zarr()
        with xr.open_dataset(source, engine="zarr", chunks=None) as opened:
            dataset = opened.load()
    return _decode(dataset)


def _choose_format(path: pathlib.Path, format: str | None) -> FileFormat:
    if format is None:
        return "zarr" if path.suffix == ".zarr" or path.is_dir() else "netcdf"
    if format not in ("netcdf", "zarr"):
        raise ValueError(f"format must be 'netcdf' or 'zarr', got {format!r}")
    return "netcdf" if format == "netcdf" else "zarr"


def _require_zarr() -> None:
    if importlib.util.find_spec("zarr") is None:
        raise ImportError(
            "writing or reading Zarr needs the zarr package: pip install zarr "
            "(or use a .nc path for NetCDF, which needs nothing extra)"
        )


def _fsync_directory(directory: pathlib.Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary_sibling(target: pathlib.Path) -> pathlib.Path:
    # Same directory as the target, so that os.replace is a rename on one filesystem.
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _atomic_write(target: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
    temporary = _temporary_sibling(target)
    try:
        write(temporary)
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _atomic_write_directory(target: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
    # A directory cannot replace a non-empty directory in one step: the old store is
    # moved aside first, so a reader may briefly find no store, but never half of one.
    temporary = _temporary_sibling(target)
    try:
        write(temporary)
        for root, _, files in os.walk(temporary):
            for name in files:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(target, old)
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON-serializable")


def _encode_attrs(attrs: Mapping[Any, Any], owner: str) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    as_json: list[str] = []
    for key, value in attrs.items():
        name = str(key)
        if name in _RESERVED_ATTRS:
            raise ValueError(f"attribute name {name!r} of {owner} is reserved for the encoding")
        if isinstance(value, str):
            encoded[name] = value
            continue
        try:
            encoded[name] = json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"attribute {name!r} of {owner} cannot be stored: {exc}; use strings, "
                "numbers, booleans, None, lists, dicts or NumPy arrays"
            ) from exc
        as_json.append(name)
    if as_json:
        encoded[_JSON_ATTRS] = json.dumps(as_json)
    return encoded


def _decode_attrs(attrs: Mapping[Any, Any]) -> dict[Any, Any]:
    decoded = dict(attrs)
    names = decoded.pop(_JSON_ATTRS, None)
    if names is None:
        return decoded
    for name in json.loads(str(names)):
        if name in decoded:
            decoded[name] = json.loads(str(decoded[name]))
    return decoded


def _narrow_integers(values: np.ndarray, name: str) -> np.ndarray:
    if values.size == 0:
        return values.astype(np.int32)
    low, high = int(values.min()), int(values.max())
    if _INT32.min <= low and high <= _INT32.max:
        return values.astype(np.int32)
    if low >= -_EXACT_FLOAT_INTEGER and high <= _EXACT_FLOAT_INTEGER:
        return values.astype(np.float64)
    raise ValueError(
        f"variable {name!r} holds integers up to {max(abs(low), abs(high))}, beyond what "
        "NetCDF3 stores exactly (|n| <= 2**53); save it as a .zarr store instead"
    )


def _encode(dataset: xr.Dataset, *, split_complex: bool, narrow_integers: bool) -> xr.Dataset:
    import xarray as xr

    variables: dict[Hashable, xr.Variable] = {}
    coord_names: set[Hashable] = set()
    for name, variable in dataset.variables.items():
        is_coord = name in dataset.coords
        owner = f"variable {name!r}"
        attrs = _encode_attrs(variable.attrs, owner)
        values = variable.values
        if split_complex and np.iscomplexobj(values):
            if name in dataset.dims:
                raise ValueError(
                    f"dimension coordinate {name!r} is complex, which NetCDF cannot index; "
                    "use a real coordinate"
                )
            for part, data in (("real", values.real), ("imag", values.imag)):
                part_name = f"{name}__{part}"
                if part_name in dataset.variables:
                    raise ValueError(
                        f"cannot store complex variable {name!r}: the name {part_name!r} "
                        "it would be split into is already taken"
                    )
                part_attrs = {**attrs, _COMPLEX_OF: str(name), _COMPLEX_PART: part}
                variables[part_name] = xr.Variable(variable.dims, data, part_attrs)
                if is_coord:
                    coord_names.add(part_name)
            continue
        kind = values.dtype.kind
        if narrow_integers and kind in "iu" and values.dtype not in _NETCDF3_INTEGERS:
            attrs[_ORIGINAL_DTYPE] = values.dtype.str
            values = _narrow_integers(values, str(name))
        # A fresh Variable drops encodings inherited from a file this dataset came from.
        variables[name] = xr.Variable(variable.dims, values, attrs)
        if is_coord:
            coord_names.add(name)
    data_vars = {k: v for k, v in variables.items() if k not in coord_names}
    coords = {k: v for k, v in variables.items() if k in coord_names}
    return xr.Dataset(data_vars, coords=coords, attrs=_encode_attrs(dataset.attrs, "the dataset"))


def _decode(dataset: xr.Dataset) -> xr.Dataset:
    import xarray as xr

    parts: dict[str, dict[str, xr.Variable]] = {}
    variables: dict[Hashable, xr.Variable] = {}
    coord_names: set[Hashable] = set()
    order: list[Hashable] = []
    for name, variable in dataset.variables.items():
        attrs = dict(variable.attrs)
        values = variable.values
        complex_of = attrs.pop(_COMPLEX_OF, None)
        part = attrs.pop(_COMPLEX_PART, None)
        original = attrs.pop(_ORIGINAL_DTYPE, None)
        if original is not None:
            values = values.astype(np.dtype(str(original)))
        decoded = xr.Variable(variable.dims, values, _decode_attrs(attrs))
        if complex_of is not None and part in ("real", "imag"):
            key = str(complex_of)
            if key not in parts:
                order.append(key)
                if name in dataset.coords:
                    coord_names.add(key)
            parts.setdefault(key, {})[str(part)] = decoded
            continue
        order.append(name)
        variables[name] = decoded
        if name in dataset.coords:
            coord_names.add(name)
    for key, pair in parts.items():
        real, imag = pair.get("real"), pair.get("imag")
        if real is None or imag is None:
            raise ValueError(f"complex variable {key!r} is missing its real or imaginary part")
        dtype = np.result_type(real.dtype, np.complex64)
        combined = (real.values + 1j * imag.values).astype(dtype)
        variables[key] = xr.Variable(real.dims, combined, real.attrs)
    data_vars = {k: variables[k] for k in order if k not in coord_names}
    coords = {k: variables[k] for k in order if k in coord_names}
    return xr.Dataset(data_vars, coords=coords, attrs=_decode_attrs(dataset.attrs))
