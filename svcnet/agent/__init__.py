"""svcnet's kubelet: runs the pods the store holds as local processes.

- ``agent``: the ``Agent`` (informer, per-pod workers, node API: logs/attach)
- ``pod``: one pod's worker: IP, files, containers, status, deletion
- ``container``: one container across restarts (restartPolicy, back-off)
- ``process``: one process: spawn, output, exit, stdin/pty
- ``sandbox``: the pod's resolv.conf/hosts/hostname via a private mount namespace
- ``envvars``, ``status``, ``logs``, ``backoff``, ``ipam``: the rules, as pure code

Configuration (config/svcnet.yaml)::

    agent:
      images:              # image -> local command, beside the built-in images
        myorg/tool: [/usr/local/bin/tool, --serve]
      log_bytes: 1048576   # per container instance
"""

from svcnet.agent.agent import Agent, ContainerAttachment

__all__ = ["Agent", "ContainerAttachment"]
