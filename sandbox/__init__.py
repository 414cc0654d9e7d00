"""The local real Kubernetes used by tests, the demo and the benchmarks (not part of the product)."""
