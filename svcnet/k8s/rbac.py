"""The RBAC facts svcnet's one API identity has, as a kind (kubeadm) cluster has them.

svcnet authenticates every API client by the cluster's bearer token
(credentials.py), and that token is the cluster admin's: the user kubeadm writes
into admin.conf (what kind hands out), in the group kubeadm binds to the
`cluster-admin` ClusterRole. There is no authorizer to consult: what the admin
may do is everything, and these tables are what kube-apiserver's RBAC rule
resolver reports for that user (the bootstrap policy of
plugin/pkg/auth/authorizer/rbac/bootstrappolicy), for SelfSubjectReview,
SelfSubjectAccessReview and SelfSubjectRulesReview.
"""

from __future__ import annotations

from svcnet.k8s.objects import Obj

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUP = "kubeadm:cluster-admins"
AUTHENTICATED = "system:authenticated"
GROUPS = (ADMIN_GROUP, AUTHENTICATED)
"""The admin's groups as the authenticator reports them (system:authenticated last)."""

ALLOW_REASON = (
    f'RBAC: allowed by ClusterRoleBinding "{ADMIN_GROUP}" of ClusterRole "cluster-admin" '
    f'to Group "{ADMIN_GROUP}"'
)
"""The reason kube-apiserver's RBAC authorizer gives when the admin's binding allows."""

_PUBLIC_URLS = ["/livez", "/readyz", "/healthz", "/version", "/version/"]


def _resource_rule(verbs: list[str], groups: list[str], resources: list[str]) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def _url_rule(verbs: list[str], urls: list[str]) -> Obj:
    return {"verbs": verbs, "nonResourceURLs": urls}


def resource_rules() -> list[Obj]:
    """cluster-admin's, then system:basic-user's (bound to system:authenticated)."""
    return [
        _resource_rule(["*"], ["*"], ["*"]),
        _resource_rule(
            ["create"],
            ["authorization.k8s.io"],
            ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        ),
        _resource_rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
    ]


def non_resource_rules() -> list[Obj]:
    """cluster-admin's, system:discovery's and system:public-info-viewer's."""
    return [
        _url_rule(["*"], ["*"]),
        _url_rule(
            ["get"],
            [
                *_PUBLIC_URLS,
                "/openapi",
                "/openapi/*",
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
            ],
        ),
        _url_rule(["get"], list(_PUBLIC_URLS)),
    ]
