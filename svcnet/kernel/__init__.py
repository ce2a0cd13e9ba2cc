"""Kernel-side networking for pods: eBPF cgroup socket hooks, loaded from Python.

- ``asm``: a small eBPF assembler; the programs are written with it.
- ``bpf``: typed bpf(2) wrappers (maps, program load, cgroup links, probe).
- ``sockhooks``: the programs and maps that give pods their addresses and
  balance Services at connect time, and ``SocketHooks`` to drive them.

Nothing here needs a compiler or a library beyond ctypes; everything needs
root and a kernel with cgroup v2 and BPF links (5.8+), which ``probe`` checks.
"""
