"""Manifest files: YAML with positions, so errors can name file, line and column.

``load_paths`` reads files, directories (*.yaml, *.yml, *.json, sorted) or `-`
(stdin), splits multi-document YAML, and returns one ``Manifest`` per object
(a `kind: List` is expanded). YAML syntax errors raise ``ManifestError`` naming
``file:line:column``. ``Manifest.position(field_path)`` maps an API field path
such as ``spec.ports[0].targetPrt`` back to where it is in the file, so errors
the API server reports by field can be shown with their line.

Documents of kind ``SvcnetConfiguration`` (config/svcnet.yaml) are daemon
settings, not objects, and are skipped.
"""

from svcnet.manifest.loader import Manifest, ManifestError, load_paths, load_text, manifest_files

__all__ = ["Manifest", "ManifestError", "load_paths", "load_text", "manifest_files"]
