"""A griffe extension: the few reStructuredText habits of the docstrings, as Markdown.

The docstrings are Google-style, read in editors and by ``help()`` as much as on the
site, and keep three Sphinx habits that Markdown would print as is:

* roles naming other objects (``:class:`Poller```, ``:meth:`~asyncoptjob.Poller.watch```).
  Each is resolved in the scope of the object that carries the docstring and mapped to
  the public path the API reference documents (``asyncoptjob._poller.Poller`` ->
  ``asyncoptjob.Poller``): a link when the target is on the reference page, plain code
  otherwise (a private helper), so ``mkdocs build --strict`` never meets a reference it
  cannot resolve;
* ``text::`` before an indented literal block: the block is already code in Markdown,
  the second colon goes;
* ``Example:`` before doctest lines (``>>>``): griffe's Google parser renders those as
  code only under ``Examples:``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import griffe

#: The modules the reference page documents, with every name in their ``__all__``.
PUBLIC_MODULES = ("asyncoptjob", "asyncoptjob.mock", "asyncoptjob.testing")

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj):`(~?)\.?([\w.]+)`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::\n(?=[ \t]*\n)")
DOCTEST_EXAMPLE = re.compile(r"^([ \t]*)Example:\n(?=[ \t]+>>>)", flags=re.MULTILINE)


class RestToMarkdown(griffe.Extension):
    """Rewrite every docstring of the package as Markdown, once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != "asyncoptjob":
            return
        public = _public_paths(pkg)
        for obj in _walk(pkg):
            if obj.docstring is not None:
                text = ROLE.sub(
                    lambda match, obj=obj: _link(pkg, obj, match, public), obj.docstring.value
                )
                text = LITERAL_BLOCK.sub(":\n", text)
                obj.docstring.value = DOCTEST_EXAMPLE.sub(r"\1Examples:\n", text)

    # griffe < 2 names the same hook differently.
    on_package_loaded = on_package


def _public_paths(pkg: griffe.Module) -> dict[str, str]:
    """Canonical path -> documented path, for the public modules and their exports."""
    public = {}
    for module_path in PUBLIC_MODULES:
        module = pkg if module_path == pkg.path else pkg[module_path.split(".", 1)[1]]
        public[module_path] = module_path
        for name in module.exports or ():
            member = module.members.get(str(name))
            if member is not None:
                target = member.target_path if member.is_alias else member.path
                public[target] = f"{module_path}.{name}"
    return public


def _walk(obj: griffe.Object | griffe.Alias) -> Iterator[griffe.Object]:
    if obj.is_alias:
        return
    assert isinstance(obj, griffe.Object)
    yield obj
    for member in obj.members.values():
        yield from _walk(member)


def _link(
    pkg: griffe.Module, obj: griffe.Object, match: re.Match[str], public: dict[str, str]
) -> str:
    short, target = match.group(1), match.group(2)
    shown = target.rsplit(".", 1)[-1] if short else target
    head, _, rest = target.partition(".")
    try:
        path = target if head == "asyncoptjob" else obj.resolve(head) + (rest and f".{rest}")
    except griffe.NameResolutionError:
        return f"`{shown}`"
    documented = _documented(path, public) if _has_docstring(pkg, path) else None
    return f"[`{shown}`][{documented}]" if documented else f"`{shown}`"


def _has_docstring(pkg: griffe.Module, path: str) -> bool:
    """Whether ``path`` has a docstring: mkdocstrings renders no undocumented member."""
    if path == pkg.path:
        return pkg.has_docstring
    try:
        return bool(pkg[path.split(".", 1)[1]].has_docstring)
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False


def _documented(path: str, public: dict[str, str]) -> str | None:
    """The path the reference page documents ``path`` under, or None if it does not."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        found = public.get(prefix) or (prefix if prefix in public.values() else None)
        if found is not None:
            tail = parts[cut:]
            if any(part.startswith("_") for part in tail):
                return None
            return ".".join([found, *tail])
    return None
