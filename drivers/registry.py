"""One registry of frame sources, keyed by URL scheme.

Built-in drivers are listed here; a third-party package adds one by declaring an entry point
in the ``fluoro.sources`` group whose name is the scheme and whose object is a callable
``open(url: str) -> FrameSource`` (the way pydicom discovers its plugins), e.g.::

    [project.entry-points."fluoro.sources"]
    mygrabber = "mygrabber.driver:open_source"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from fluoro.errors import SourceError
from fluoro.frame import FrameSource

ENTRY_POINT_GROUP = "fluoro.sources"

# scheme -> "module:function"; imported lazily so opening one source never loads another's deps.
_BUILTIN: dict[str, str] = {
    "sim": "drivers.sim:open_sim",
    "dicom": "drivers.dicom:open_dicom",
    "replay": "drivers.recording:open_replay",
    "video": "drivers.opencv_source:open_video",
    "capture": "drivers.opencv_source:open_capture",
    "family": "drivers.family:open_family",
}


def _load(target: str) -> Callable[[str], FrameSource]:
    module_name, _, attr = target.partition(":")
    return getattr(import_module(module_name), attr)


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def schemes() -> list[str]:
    """Every URL scheme that can be opened, built-in and installed plug-ins."""
    return sorted(set(_BUILTIN) | set(_plugins()))


def scheme_of(url: str) -> str:
    """The scheme of a source URL (``sim://spine`` -> ``sim``, ``capture:0`` -> ``capture``)."""
    scheme, sep, _ = url.partition(":")
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise SourceError(
            f"{url!r}: not a source URL; expected SCHEME:..., one of {', '.join(schemes())}"
        )
    return scheme.lower()


def open_source(url: str) -> FrameSource:
    """Open the frame source named by ``url``; raises ``SourceError`` naming the URL if it can't."""
    scheme = scheme_of(url)
    if scheme in _BUILTIN:
        opener = _load(_BUILTIN[scheme])
    else:
        plugin = _plugins().get(scheme)
        if plugin is None:
            raise SourceError(
                f"{url!r}: unknown source scheme {scheme!r}; expected one of {', '.join(schemes())}"
            )
        opener = plugin.load()  # type: ignore[attr-defined]
    return opener(url)
