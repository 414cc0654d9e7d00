"""The only way gridshim talks to the Kubernetes API: a re-export of `gridshim.kube` (see its modules).

Kept so that every `from gridshim.cluster import ...` keeps working; new code may import
`gridshim.kube.client` and friends directly. A thin stdlib client rather than the official `kubernetes`
package: importing that package alone costs more than a whole `kubectl create job` (docs/design.md).
"""

from __future__ import annotations

import time  # noqa: F401  (tests patch cluster.time.sleep: the same module object everywhere)

from gridshim.errors import (  # noqa: F401
    ClusterConfigError,
    ClusterError,
    ConflictError,
    ForbiddenError,
    GridshimError,
    JobExistsError,
    JobNotFoundError,
    QuotaExceededError,
)
from gridshim.kube.auth import Auth, ExecCredential, memfile as _memfile, run_exec  # noqa: F401
from gridshim.kube.client import (  # noqa: F401
    _GENERATED_BASE_MAX,
    _LIST_META,
    _SUFFIX_ALPHABET,
    KINDS,
    PAGE,
    TOKEN_ANNOTATION,
    KubeCluster,
    _continue_token,
    _holds,
    _Prefetch,
    client_name,
)
from gridshim.kube.config import KUBECONFIG_LIMIT, Credentials, _read_kubeconfig, kubeconfig_paths, load_credentials  # noqa: F401
from gridshim.kube.transport import (  # noqa: F401
    _RBAC_MISSING,
    _TLS_CONFIG_REASONS,
    DEFAULT_RETRY_SECONDS,
    FIRST_DELAY,
    FORBIDDEN_WINDOW,
    MAX_DELAY,
    MIN_ATTEMPT_TIMEOUT,
    RETRY_BUDGET,
    RETRY_STATUSES,
    TIMEOUT,
    Transport,
    _decode_cert,
    _dn,
    _lenient_retry_seconds,
    _one_line,
    _Retry,
    cert_dates,
    parse_retry_after,
    retry_seconds,
)
from gridshim.model import Manifest, tool_of  # noqa: F401  (the old module's names, for `from gridshim.cluster import`)

__all__ = ["KINDS", "PAGE", "TOKEN_ANNOTATION", "KubeCluster", "Credentials", "client_name", "kubeconfig_paths",
           "load_credentials", "cert_dates", "parse_retry_after", "retry_seconds", "DEFAULT_RETRY_SECONDS",
           "RETRY_BUDGET", "TIMEOUT", "KUBECONFIG_LIMIT", "Transport", "Auth"]
