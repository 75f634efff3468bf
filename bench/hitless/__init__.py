"""``make hitless``: ping through a rack while bgpmux restarts, and count what is lost.

A ToR and a node in network namespaces; on the node bgpmux with a Calico-role BIRD and a
MetalLB-role FRR. Pings every 20 ms from the ToR to a pod address and an LB address on the node,
and from the node to an address behind the ToR, while bgpmux is restarted (SIGTERM and SIGKILL
alternately). The goal is no lost ping at all.
"""
