"""The svcnet-images ConfigMap: image mappings a user changes while svcnet runs.

`kube-system/svcnet-images` holds one key, `images.yaml`, written as
`agent.images` is in svcnet.yaml. The registry refuses a version whose
mappings do not parse (422 on `data[images.yaml]`, as an admission webhook
would), so the agent, which follows it (agent/agent.py), only ever reads
good ones. Its YAML is read with the manifests' bounded decoder: no alias
bomb or depth gets through a string inside a ConfigMap either.
"""

from __future__ import annotations

import yaml

from svcnet.images import Image, MappingError, mappings
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import IMAGES_CONFIGMAP, IMAGES_KEY, IMAGES_NAMESPACE
from svcnet.manifest import decode


def is_images_configmap(obj: Obj) -> bool:
    md = obj.get("metadata") or {}
    return (
        obj.get("kind") == "ConfigMap"
        and md.get("namespace") == IMAGES_NAMESPACE
        and md.get("name") == IMAGES_CONFIGMAP
    )


def read(obj: Obj) -> dict[str, Image]:
    """The mappings of the ConfigMap; raises MappingError saying what is wrong."""
    text = (obj.get("data") or {}).get(IMAGES_KEY)
    if text is None:
        return {}
    try:
        value = decode.load_yaml(str(text))
    except (decode.DecodeError, yaml.YAMLError) as e:
        raise MappingError(f"{IMAGES_KEY}: {e}") from None
    return mappings(value, IMAGES_KEY)
