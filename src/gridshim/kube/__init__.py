"""gridshim's own Kubernetes API client, split the way lightkube and kr8s are:

- `config`: kubeconfig files, kubectl's merge, one context → `Credentials` (no network)
- `auth`: who a request says it is — client certificate, token, tokenFile, exec plugins, impersonation
- `transport`: connections, TLS, proxies, retries and the one error funnel
- `client`: `KubeCluster`, the resource calls

Stdlib only (PyYAML for the kubeconfig). `gridshim.cluster` re-exports the names the rest of gridshim uses.
Importing this package imports none of its modules; import the one you need.
"""
