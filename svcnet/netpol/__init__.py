"""NetworkPolicy enforcement: Calico's (or Cilium's) policy agent, at the socket hooks.

``rules`` turns policies, pods and namespaces into what each pod admits;
``controller`` keeps the hooks' maps equal to it and says what it cannot
enforce.
"""

from svcnet.netpol.controller import NetworkPolicyController

__all__ = ["NetworkPolicyController"]
